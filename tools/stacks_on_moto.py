#!/usr/bin/env python3
"""Create trailguard's stacks on moto's CloudFormation and check what they create.

  tools/stacks_on_moto.py MOTO_SERVER

The account template is transformed locally with aws-sam-translator (its CodeUri rewritten to an s3:// location,
since the translator refuses a local path), then the account, member, forwarder, heartbeat and sso-admin stacks are created
on a moto server started here, and the created roles and policies, rules with their patterns and targets, queues,
topics, table, keys and schedules are checked against the templates.

moto skips resource types it does not model with a warning in its log. Those are collected from the server's own
log, compared with SKIPPED (the test fails on any other), and each skipped resource is checked structurally in the
transformed template instead. moto evaluates neither AllowedPattern nor Rules: the parameter validation is checked
here by evaluating the templates' Rules assertions and patterns on empty values.
"""
import ast
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import boto3
from cfnlint.decode import decode
from samtranslator.translator.transform import transform

ROOT = pathlib.Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCOUNT = "123456789012"
# The member account the member and forwarder stacks are created in (moto keeps accounts apart by credentials).
MEMBER = "111122223333"
# The resource types moto's CloudFormation does not create (it logs a warning and goes on), each checked
# structurally below. Any other skipped type fails the test.
SKIPPED = {
    "AWS::CloudWatch::Alarm",
    "AWS::Events::EventBusPolicy",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::ResourcePolicy",
    "AWS::SNS::Subscription",  # only with AlertEmail, not given here
    "AWS::SQS::QueuePolicy",
    "AWS::Scheduler::Schedule",
    "AWS::Scheduler::ScheduleGroup",
}
PARAMETERS = {
    "template": {"Scope": "organization", "OrganizationId": "o-a1b2c3d4e5", "ExternalId": "trailguard-external-id-0001",
                 "DeploymentRoleArns": f"arn:aws:iam::{ACCOUNT}:role/trailguard-deploy",
                 "SsoAdminRoleArn": f"arn:aws:iam::{ACCOUNT}:role/trailguard-sso-admin"},
    "member": {"SecurityAccountId": ACCOUNT, "ExternalId": "trailguard-external-id-0001",
               "OrganizationId": "o-a1b2c3d4e5", "Canary": "true"},
    "forwarder": {"TargetBusArn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default", "ForwardGlobal": "true"},
    # Created in the home account, standing for the management (or delegated administrator) account.
    "sso-admin": {"SecurityAccountId": ACCOUNT, "ExternalId": "trailguard-external-id-0001", "OrganizationId": "o-a1b2c3d4e5"},
    "heartbeat": {"Account": "111122223333", "Region": "eu-west-1", "Path": "regional",
                  "OpsTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:trailguard-ops"},
}
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


def load(name):
    template, errors = decode(str(ROOT / "infra" / f"{name}.yaml"))
    if errors:
        sys.exit(f"{name}.yaml cannot be read: {errors}")
    return template


class NoManagedPolicies:
    """The functions name no managed policy by name, so the translator needs no IAM look-up."""

    def load(self):
        return {}


def sam_transform(template):
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://trailguard-artifacts/bootstrap.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    return transform(template, {}, NoManagedPolicies())


def for_moto(template):
    """A copy of a template with what moto 5.2.1 cannot read removed (checked structurally instead): it reads
    AWS::KMS::Key tags as KMS's API shape (TagKey/TagValue), not CloudFormation's (Key/Value), and resolves a Ref
    to an AWS::Events::EventBus to the bus object rather than its name."""
    buses = {k: r["Properties"]["Name"] for k, r in template["Resources"].items() if r["Type"] == "AWS::Events::EventBus"}
    text = json.dumps(template)
    for logical, name in buses.items():
        text = text.replace(json.dumps({"Ref": logical}), json.dumps(name))
    copy = json.loads(text)
    for logical, resource in copy["Resources"].items():
        if resource["Type"] == "AWS::KMS::Key":
            tags = resource["Properties"].pop("Tags", [])
            check(tags == [{"Key": "trailguard", "Value": "true"}], f"{logical}: the SCP protects keys by the tag trailguard=true")
    return copy


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(binary, log):
    port = free_port()
    server = subprocess.Popen([binary, "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, url
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit("moto server did not start")


def create(cfn, name, body, parameters):
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(for_moto(body)), Parameters=params,
                     Capabilities=["CAPABILITY_NAMED_IAM", "CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    for _ in range(100):
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if status.endswith("_COMPLETE") or status.endswith("_FAILED"):
            break
        time.sleep(0.2)
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    failed = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events if e["ResourceStatus"].endswith("FAILED")]
    check(status == "CREATE_COMPLETE", f"{name}: {status} {failed}")
    resources = cfn.describe_stack_resources(StackName=name)["StackResources"]
    return {r["LogicalResourceId"]: r for r in resources if "LogicalResourceId" in r}


def skipped_types(log_text):
    return set(re.findall(r"Tried to parse (AWS::[A-Za-z0-9:]+) but it's not supported", log_text))


def of_type(template, kind):
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind and "Condition" not in r or
            r["Type"] == kind and r.get("Condition") in template.get("_true_conditions", ())}


def document(value):
    """A policy document as IAM returns it: parsed by boto3, a (URL-encoded) JSON string, or, for a policy a
    moto stack created, the Python text of the template's mapping."""
    if isinstance(value, dict):
        return value
    text = urllib.parse.unquote(value)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return ast.literal_eval(text)


def trust(iam, role):
    return document(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"])


def inline(iam, role):
    return {p: document(iam.get_role_policy(RoleName=role, PolicyName=p)["PolicyDocument"])
            for p in iam.list_role_policies(RoleName=role)["PolicyNames"]}


def actions(document):
    out = set()
    for statement in document["Statement"]:
        a = statement.get("Action", [])
        out.update([a] if isinstance(a, str) else a)
    return out


def check_account_stack(clients, created, template, expected_patterns):
    iam, events, sqs, sns, ddb, kms = (clients[k] for k in ("iam", "events", "sqs", "sns", "dynamodb", "kms"))
    for role, must in {
        "trailguard-detect": {"iam:ListRoleTags", "events:PutEvents", "dynamodb:PutItem"},
        "trailguard-remediate": {"iam:PutRolePolicy", "events:PutEvents", "dynamodb:DeleteItem"},
        "trailguard-canary": {"iam:TagRole"},
    }.items():
        principals = {json.dumps(s["Principal"], sort_keys=True) for s in trust(iam, role)["Statement"]}
        check(len(principals) == 1, f"{role}: one trusted principal, got {principals}")
        granted = set().union(*(actions(d) for d in inline(iam, role).values()))
        check(must <= granted, f"{role}: lacks {must - granted}")
    # The optional sso-admin role, given: the remediator may assume exactly that role.
    sso_statements = [st for d in inline(iam, "trailguard-remediate").values() for st in d["Statement"] if st.get("Sid") == "SsoAdmin"]
    check([st.get("Resource") for st in sso_statements] == [PARAMETERS["template"]["SsoAdminRoleArn"]],
          f"remediator's SsoAdmin statement: {sso_statements}")
    canary_trust = trust(iam, "trailguard-canary")["Statement"][0]
    check(canary_trust["Principal"] == {"Service": "scheduler.amazonaws.com"}, f"canary trust: {canary_trust}")
    check(set(canary_trust["Condition"]["StringEquals"]) == {"aws:SourceAccount", "aws:SourceArn"}, f"canary trust: {canary_trust}")
    rules = {r["Name"]: r for r in events.list_rules(EventBusName="default")["Rules"]}
    by_logical = {logical: created[logical]["PhysicalResourceId"] for logical in created if logical.startswith("Rule")}
    for name, pattern in expected_patterns.items():
        physical = by_logical.get(f"Rule{name}")
        check(physical in rules, f"rule Rule{name} was not created")
        if physical not in rules:
            continue
        check(json.loads(rules[physical]["EventPattern"]) == pattern, f"Rule{name}: pattern differs")
        targets = events.list_targets_by_rule(Rule=physical, EventBusName="default")["Targets"]
        check([t["Arn"].rsplit(":", 1)[-1] for t in targets] == ["trailguard-detect"], f"Rule{name}: targets {targets}")
        check(all("DeadLetterConfig" in t and t["RetryPolicy"]["MaximumRetryAttempts"] == 8 for t in targets), f"Rule{name}: retries")
    buses = {b["Name"] for b in events.list_event_buses()["EventBuses"]}
    check("trailguard-findings" in buses, f"findings bus missing: {buses}")
    queues = {u.rsplit("/", 1)[-1] for u in sqs.list_queues().get("QueueUrls", [])}
    check({"trailguard-rule-dlq", "trailguard-detect-dlq", "trailguard-remediate-dlq"} <= queues, f"queues: {queues}")
    topics = {t["TopicArn"].rsplit(":", 1)[-1]: t["TopicArn"] for t in sns.list_topics()["Topics"]}
    check({"trailguard-alerts", "trailguard-ops"} <= set(topics), f"topics: {topics}")
    for name in ("trailguard-alerts", "trailguard-ops"):
        if name in topics:
            attributes = sns.get_topic_attributes(TopicArn=topics[name])["Attributes"]
            check(attributes.get("KmsMasterKeyId"), f"{name} is not encrypted: {attributes}")
    table = ddb.describe_table(TableName="trailguard-state")["Table"]
    check([k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"], f"table keys: {table['KeySchema']}")
    functions = {f["FunctionName"]: f for f in clients["lambda"].list_functions()["Functions"]}
    check({"trailguard-detect", "trailguard-remediate"} <= set(functions), f"functions: {set(functions)}")
    env = functions.get("trailguard-detect", {}).get("Environment", {}).get("Variables", {})
    check(env.get("OWN_RESOURCE_ARNS", "").count(",") >= 13, f"OWN_RESOURCE_ARNS: {env.get('OWN_RESOURCE_ARNS')}")


def check_sso_admin_stack(clients, sso_admin):
    """The optional sso-admin role: trusts only the remediator, with the external id, and may call only sso:."""
    create(clients["cloudformation"], "trailguard-sso-admin", sso_admin, PARAMETERS["sso-admin"])
    iam = clients["iam"]
    statement = trust(iam, "trailguard-sso-admin")["Statement"][0]
    check(statement["Condition"]["ArnEquals"]["aws:PrincipalArn"] == f"arn:aws:iam::{ACCOUNT}:role/trailguard-remediate", f"sso-admin trust: {statement}")
    check(statement["Condition"]["StringEquals"]["sts:ExternalId"] == PARAMETERS["sso-admin"]["ExternalId"], "sso-admin: external id")
    granted = set().union(*(actions(d) for d in inline(iam, "trailguard-sso-admin").values()))
    check(granted and all(a.startswith("sso:") for a in granted), f"sso-admin grants: {granted}")


def check_skipped_parts(transformed, member, forwarder, heartbeat):
    """What moto skipped, read from the transformed templates."""
    res = transformed["Resources"]
    # Two keys: the alarms' key lets CloudWatch publish; the functions' key does not (it is not the alarms' path).
    def sids(key):
        return {s["Sid"]: s for s in res[key]["Properties"]["KeyPolicy"]["Statement"]}
    check("AlarmsPublish" in sids("OpsKey") and sids("OpsKey")["AlarmsPublish"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}, "OpsKey must let CloudWatch publish")
    check(not any(s["Principal"] == {"Service": "cloudwatch.amazonaws.com"} for s in sids("Key").values()), "the functions' key must not be the alarms'")
    check(res["OpsTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "OpsKey"}, "ops topic key")
    check(res["AlertTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "Key"}, "alert topic key")
    for logical, resource in res.items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            check(resource["Properties"]["AlarmActions"] == [{"Ref": "OpsTopic"}], f"{logical} must page through the ops topic")
    for logical, resource in list(res.items()) + list(heartbeat["Resources"].items()):
        if resource["Type"] == "AWS::CloudWatch::Alarm" and resource["Properties"].get("Namespace") == "trailguard":
            p = resource["Properties"]
            check(p["TreatMissingData"] == "breaching" and p["Period"] * p["EvaluationPeriods"] == 900
                  and p["ComparisonOperator"] == "LessThanThreshold" and p["MetricName"] == "Heartbeat"
                  and [d["Name"] for d in p["Dimensions"]] == ["Account", "Region", "Path"], f"{logical}: heartbeat alarm {p}")
    for label, template, action in (("template", transformed, "iam:tagRole"), ("member", member, "iam:tagRole"),
                                    ("forwarder", forwarder, "sqs:tagQueue")):
        schedule = template["Resources"]["CanarySchedule"]["Properties"]
        check(schedule["ScheduleExpression"] == "rate(5 minutes)", f"{label}: schedule {schedule['ScheduleExpression']}")
        check(str(schedule["Target"]["Arn"]).endswith(f":scheduler:::aws-sdk:{action}'}}") or action in json.dumps(schedule["Target"]["Arn"]), f"{label}: target {schedule['Target']['Arn']}")
        check("<aws.scheduler.scheduled-time>" in json.dumps(schedule["Target"]["Input"]), f"{label}: input")
        check(schedule["Target"]["RoleArn"] == {"Fn::GetAtt": ["CanaryRole", "Arn"]}, f"{label}: role")
        # Scheduler names the schedule group as aws:SourceArn: the role must trust exactly the schedule's group.
        group = template["Resources"]["CanaryScheduleGroup"]["Properties"]["Name"]
        check(schedule["GroupName"] == {"Ref": "CanaryScheduleGroup"}, f"{label}: the schedule is not in its group")
        trusted = template["Resources"]["CanaryRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"]["aws:SourceArn"]
        check(json.dumps(trusted).endswith(f':schedule-group/{group}"}}'), f"{label}: the canary role trusts {trusted}, not its group {group}")
    # Bus and queue policies: who may send.
    forwarding = res["OrganizationForwarding"]["Properties"]["Statement"]
    check(forwarding["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == {"Ref": "OrganizationId"}, "org forwarding")
    findings = res["FindingsBusPolicy"]["Properties"]["Statement"]
    check(findings["Effect"] == "Deny" and findings["Principal"] == "*", "findings bus policy must deny everyone else")
    for logical, resource in res.items():
        if resource["Type"] == "AWS::SQS::QueuePolicy":
            for s in resource["Properties"]["PolicyDocument"]["Statement"]:
                check(s["Principal"] == {"Service": "events.amazonaws.com"} and "aws:SourceAccount" in s["Condition"]["StringEquals"], f"{logical}: {s}")
    # The detector's resource policy: Allow for its rules, Deny for everyone else.
    statements = {s["Sid"]: s for s in res["DetectInvokePolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    rules = {k for k, r in res.items() if r["Type"] == "AWS::Events::Rule" and k.startswith("Rule")}
    named = {a["Fn::GetAtt"][0] for a in statements["NobodyElse"]["Condition"]["ArnNotEquals"]["aws:SourceArn"]}
    check(statements["NobodyElse"]["Effect"] == "Deny" and named == rules, f"detector Deny excepts {named ^ rules}")
    for logical in ("DetectLogGroup", "RemediateLogGroup"):
        check(res[logical]["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["Key", "Arn"]}, f"{logical}: key")
    invoke = [r for r in res.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    check(len(invoke) == 2 and all(r["Properties"]["MaximumRetryAttempts"] == 2 for r in invoke), "event invoke configs")
    subscriptions = [r for r in res.values() if r["Type"] == "AWS::SNS::Subscription"]
    check({json.dumps(r["Properties"]["TopicArn"]) for r in subscriptions} == {'{"Ref": "AlertTopic"}', '{"Ref": "OpsTopic"}'}, "subscriptions")


def evaluate(node, values, conditions):
    """Evaluates a Rules assertion or condition with the given parameter values."""
    if isinstance(node, dict) and len(node) == 1:
        (key, arg), = node.items()
        if key == "Ref":
            return values.get(arg, "")
        if key in ("Fn::Equals",):
            return evaluate(arg[0], values, conditions) == evaluate(arg[1], values, conditions)
        if key == "Fn::Not":
            return not evaluate(arg[0], values, conditions)
        if key == "Fn::And":
            return all(evaluate(a, values, conditions) for a in arg)
        if key == "Fn::Or":
            return any(evaluate(a, values, conditions) for a in arg)
        if key == "Condition":
            return evaluate(conditions[arg], values, conditions)
    return node


def refused(template, values):
    """Why CloudFormation would refuse these parameter values: AllowedPattern, MinLength, then Rules."""
    reasons = []
    for name, p in template.get("Parameters", {}).items():
        value = values.get(name, p.get("Default"))
        if value is None:
            reasons.append(f"{name} is required")
            continue
        if "AllowedPattern" in p and not re.fullmatch(p["AllowedPattern"], str(value)):
            reasons.append(f"{name} does not match {p['AllowedPattern']}")
        if "MinLength" in p and len(str(value)) < int(p["MinLength"]):
            reasons.append(f"{name} is shorter than {p['MinLength']}")
    everything = {name: p.get("Default", "") for name, p in template.get("Parameters", {}).items()}
    everything.update(values)
    everything["AWS::Region"] = values.get("AWS::Region", REGION)
    for rule_name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], everything, {}):
            continue
        for assertion in rule["Assertions"]:
            if not evaluate(assertion["Assert"], everything, {}):
                reasons.append(f"{rule_name}: {assertion['AssertDescription']}")
    return reasons


def check_parameter_validation(template, member):
    good = PARAMETERS["template"]
    check(refused(template, good) == [], f"good parameters refused: {refused(template, good)}")
    for empty in ("ExternalId", "OrganizationId"):
        reasons = refused(template, {**good, empty: ""})
        check(any(empty in r for r in reasons), f"template: an empty {empty} is accepted")
    check(refused(template, {**good, "OrganizationId": "", "ExternalId": "", "Scope": "single-account"}) == [],
          "single-account needs neither")
    check(any("us-east-1" in r for r in refused(template, {**good, "AWS::Region": "eu-west-1"})), "the region is not asserted")
    check(any("ExternalId" in r for r in refused(template, {**good, "ExternalId": "short"})), "a short ExternalId is accepted")
    check(refused(template, {**good, "SsoAdminRoleArn": ""}) == [], "the sso-admin role is not optional")
    check(any("SsoAdminRoleArn" in r for r in refused(template, {**good, "SsoAdminRoleArn": "trailguard-sso-admin"})),
          "an SsoAdminRoleArn that is not a role ARN is accepted")
    good_member = PARAMETERS["member"]
    check(refused(member, good_member) == [], f"good member parameters refused: {refused(member, good_member)}")
    for empty in ("ExternalId", "OrganizationId"):
        check(any(empty in r for r in refused(member, {**good_member, empty: ""})), f"member: an empty {empty} is accepted")


def main(moto_server):
    template, member, forwarder, heartbeat = load("template"), load("member"), load("forwarder"), load("heartbeat")
    sso_admin = load("sso-admin")
    check(refused(sso_admin, PARAMETERS["sso-admin"]) == [], f"good sso-admin parameters refused: {refused(sso_admin, PARAMETERS['sso-admin'])}")
    check(any("InstanceId" in r for r in refused(sso_admin, {**PARAMETERS["sso-admin"], "InstanceId": "ssoins-*"})),
          "sso-admin: a pattern as InstanceId is accepted")
    check_parameter_validation(template, member)
    transformed = sam_transform(json.loads(json.dumps(template)))
    check("AWS::Serverless::Function" not in json.dumps(transformed), "the transform left a serverless resource")
    expected = {p["name"]: p["pattern"] for p in json.loads(subprocess.run(
        [str(ROOT / "target" / "debug" / "trailguard"), "patterns", "--format", "json"],
        check=True, capture_output=True, text=True).stdout)["rules"]}
    with tempfile.TemporaryFile("w+") as log:
        server, url = start_moto(moto_server, log)
        try:
            session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
            clients = {name: session.client(name, endpoint_url=url) for name in
                       ("cloudformation", "iam", "events", "sqs", "sns", "dynamodb", "kms", "lambda", "s3", "sts")}
            clients["s3"].create_bucket(Bucket="trailguard-artifacts")
            clients["s3"].put_object(Bucket="trailguard-artifacts", Key="bootstrap.zip", Body=b"PK\x05\x06" + b"\0" * 18)
            cfn = clients["cloudformation"]
            created = create(cfn, "trailguard", transformed, PARAMETERS["template"])
            check_account_stack(clients, created, transformed, expected)
            creds = clients["sts"].assume_role(RoleArn=f"arn:aws:iam::{MEMBER}:role/stacksets-exec", RoleSessionName="test")["Credentials"]
            in_member = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                      aws_session_token=creds["SessionToken"], region_name=REGION)
            member_clients = {name: in_member.client(name, endpoint_url=url) for name in ("cloudformation", "iam", "events", "sqs")}
            cfn = member_clients["cloudformation"]
            member_created = create(cfn, "trailguard-member", member, PARAMETERS["member"])
            iam = member_clients["iam"]
            for role, principal in (("trailguard-member", "trailguard-remediate"), ("trailguard-member-reader", "trailguard-detect")):
                statement = trust(iam, role)["Statement"][0]
                check(statement["Condition"]["ArnEquals"]["aws:PrincipalArn"] == f"arn:aws:iam::{ACCOUNT}:role/{principal}", f"{role}: {statement}")
                check(statement["Condition"]["StringEquals"]["sts:ExternalId"] == PARAMETERS["member"]["ExternalId"], f"{role}: external id")
            check("CanaryRole" in member_created, "member canary role not created")
            forwarder_created = create(cfn, "trailguard-forwarder", forwarder, PARAMETERS["forwarder"])
            events = member_clients["events"]
            forwards = {logical: r["PhysicalResourceId"] for logical, r in forwarder_created.items() if logical.startswith("Forward") and r["ResourceType"] == "AWS::Events::Rule"}
            check(set(forwards) == {f"Forward{n}" for n in expected}, f"forward rules: {set(forwards) ^ {f'Forward{n}' for n in expected}}")
            for logical, physical in forwards.items():
                rule = events.describe_rule(Name=physical)
                check(json.loads(rule["EventPattern"]) == expected[logical[len("Forward"):]], f"{logical}: pattern")
                targets = events.list_targets_by_rule(Rule=physical)["Targets"]
                check([t["Arn"] for t in targets] == [PARAMETERS["forwarder"]["TargetBusArn"]] and all(t.get("RoleArn") for t in targets), f"{logical}: {targets}")
            check(iam.get_role(RoleName=f"trailguard-canary-{REGION}")["Role"]["RoleName"] == f"trailguard-canary-{REGION}", "forwarder canary role")
            check(any(u.endswith("/trailguard-forward-dlq") for u in member_clients["sqs"].list_queues()["QueueUrls"]), "forwarder queue")
            create(clients["cloudformation"], "trailguard-heartbeat-111122223333-eu-west-1-regional", heartbeat, PARAMETERS["heartbeat"])
            check_sso_admin_stack(clients, sso_admin)
        except Exception:
            log.seek(0)
            print("moto's log ends:\n" + "".join(log.read().splitlines(True)[-40:]), file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(timeout=10)
        log.seek(0)
        text = log.read()
    skipped = skipped_types(text)
    check(skipped - SKIPPED == set(), f"moto skipped types not on the allow-list (check them structurally): {sorted(skipped - SKIPPED)}")
    check_skipped_parts(transformed, member, forwarder, heartbeat)
    if problems:
        sys.exit("stacks on moto:\n  " + "\n  ".join(problems))
    print(f"stacks on moto: 5 stacks created and checked; moto skipped {sorted(skipped)} (checked structurally)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
