#!/usr/bin/env python3
"""Keep infra/ in step with the rules, and check it with trailguard's own analyzer.

  tools/infra.py splice TRAILGUARD   write the generated EventBridge rules into the templates
  tools/infra.py check TRAILGUARD    fail when the templates' rules differ from what the rules need, when an IAM
                                     policy in them is flagged by `trailguard check-policy`, or when any action
                                     is a wildcard
  tools/infra.py selftest TRAILGUARD show that the policy check fails on a template that grants too much

TRAILGUARD is the path of the built `trailguard` binary. Templates are read with cfn-lint's loader, which
understands CloudFormation's short-form intrinsics (!Ref, !Sub, !GetAtt).
"""
import json
import pathlib
import re
import subprocess
import sys
import tempfile

from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parent.parent
# (template, `trailguard patterns` format, marker)
GENERATED = [
    (ROOT / "infra" / "template.yaml", "account-stack", "EVENT RULES"),
    (ROOT / "infra" / "forwarder.yaml", "forwarder", "FORWARD RULES"),
]
TEMPLATES = sorted((ROOT / "infra").glob("*.yaml"))
# Values for parameters and pseudo parameters when a policy is checked. 111122223333 stands for the security
# account and is trusted in the check's configuration.
# The only flagged grants the templates may hold, with why. Undoing grants needs the power to reshape IAM: a
# session can only be revoked by writing a deny policy on its role (as the console's "Revoke active sessions"
# does), a user's derived or federated credentials by a deny on the user, and a bad policy version only
# rolled back by choosing another default. Both roles are denied every
# write on trailguard's own roles, can assume nothing but the member roles, and carry no managed policy.
ACCEPTED = {
    ("template.yaml", "RemediateRole remediate"): {"iam:PutRolePolicy", "iam:PutUserPolicy", "iam:SetDefaultPolicyVersion"},
    ("member.yaml", "RemediationRole remediate"): {"iam:PutRolePolicy", "iam:PutUserPolicy", "iam:SetDefaultPolicyVersion"},
}
VALUES = {
    "AWS::Partition": "aws",
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "SecurityAccountId": "111122223333",
    # An optional parameter with an empty default: checked as given, in the (trusted) security account.
    "SsoAdminRoleArn": "arn:aws:iam::111122223333:role/trailguard-sso-admin",
}


def generated(trailguard, fmt):
    return subprocess.run([trailguard, "patterns", "--format", fmt], check=True, capture_output=True, text=True).stdout


def block(text, marker):
    begin = re.search(rf"^  # BEGIN GENERATED {marker}.*\n", text, re.M)
    end = re.search(rf"^  # END GENERATED {marker}.*$", text, re.M)
    if not begin or not end:
        sys.exit(f"markers for {marker} not found")
    return begin, end


def splice(trailguard):
    for path, fmt, marker in GENERATED:
        text = path.read_text()
        begin, end = block(text, marker)
        path.write_text(text[: begin.end()] + generated(trailguard, fmt) + text[end.start():])
        print(f"wrote {path.relative_to(ROOT)}")


def resolve(node, params, name="value"):
    """Replaces intrinsic functions with example values, so a policy can be analysed as IAM would see it."""
    if isinstance(node, list):
        return [resolve(n, params, name) for n in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (key, value), = node.items()
        if key == "Ref":
            if value in VALUES:
                return VALUES[value]
            if value in params:
                return str(params[value].get("Default", f"example-{value}"))
            return f"arn:aws:example:us-east-1:123456789012:{value}"
        if key == "Fn::If":
            # The condition's true branch: an optional grant is checked as if it were given.
            return resolve(value[1], params, name)
        if key == "Fn::GetAtt":
            target = value if isinstance(value, str) else ".".join(value)
            return f"arn:aws:example:us-east-1:123456789012:{target}"
        if key == "Fn::Sub":
            text = value if isinstance(value, str) else value[0]

            def sub(match):
                ref = match.group(1)
                if ref in VALUES:
                    return VALUES[ref]
                if ref in params:
                    return str(params[ref].get("Default", f"example-{ref}"))
                return f"example-{ref}"

            return re.sub(r"\$\{([^}]+)\}", sub, text)
    return {k: resolve(v, params, k) for k, v in node.items()}


def policies(template):
    """Every IAM policy document in a template: (where, kind, document)."""
    params = template.get("Parameters", {})
    for logical, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::IAM::Role":
            yield f"{logical} trust", "trust", resolve(props["AssumeRolePolicyDocument"], params)
            for policy in props.get("Policies", []):
                yield f"{logical} {policy['PolicyName']}", "identity", resolve(policy["PolicyDocument"], params)
        elif kind == "AWS::SQS::QueuePolicy" or kind == "AWS::SNS::TopicPolicy":
            yield f"{logical}", "resource", resolve(props["PolicyDocument"], params)
        elif kind == "AWS::KMS::Key":
            yield f"{logical} key policy", "resource", resolve(props["KeyPolicy"], params)
        elif kind == "AWS::Events::EventBusPolicy":
            yield f"{logical}", "resource", resolve({"Statement": [props["Statement"]]}, params)


def actions(document):
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        for key in ("Action", "NotAction"):
            value = statement.get(key, [])
            yield from [value] if isinstance(value, str) else value


# AWS Organizations' quota on one SCP document: 5,120 bytes; a policy saved through the CLI or an SDK is kept
# exactly as given, white space included (https://docs.aws.amazon.com/organizations/latest/userguide/
# orgs_reference_limits.html, read 2026-11-29). So the file is counted in bytes, as written.
SCP = ROOT / "infra" / "scp.json"
SCP_MAX_BYTES = 5120


def scp_size():
    return len(SCP.read_bytes())


def scp_problems():
    json.loads(SCP.read_text())
    if scp_size() > SCP_MAX_BYTES:
        return [f"infra/scp.json is {scp_size()} bytes, over an SCP's {SCP_MAX_BYTES}"]
    return []


# Least privilege for the optional sso-admin role: its policy grants exactly the `sso:` actions the code calls, each
# named where the SDK error is classified (`classify("sso:…", …)`), no more and no fewer.
SSO_CODE = ROOT / "shared" / "src" / "aws" / "ssoadmin.rs"
SSO_TEMPLATE = ROOT / "infra" / "sso-admin.yaml"


def sso_calls():
    return set(re.findall(r'classify\("(sso:[A-Za-z]+)"', SSO_CODE.read_text()))


def sso_problems():
    template, errors = decode(str(SSO_TEMPLATE))
    if errors:
        return [f"sso-admin.yaml: cannot be read: {errors}"]
    granted = set()
    for _, kind, document in policies(template):
        if kind == "identity":
            granted.update(actions(document))
    called = sso_calls()
    problems = []
    if not called:
        problems.append(f"{SSO_CODE.relative_to(ROOT)}: no sso: call found (the check would prove nothing)")
    if granted - called:
        problems.append(f"sso-admin.yaml grants actions the code never calls: {sorted(granted - called)}")
    if called - granted:
        problems.append(f"sso-admin.yaml lacks actions the code calls: {sorted(called - granted)}")
    return problems


def check(trailguard):
    problems = stale_blocks(trailguard) + audit(trailguard, TEMPLATES) + scp_problems() + sso_problems()
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        sys.exit(1)
    print(f"infra: {len(TEMPLATES)} templates, rule patterns in step, no flagged policy, no wildcard action, "
          f"SCP {scp_size()} of {SCP_MAX_BYTES} bytes, sso-admin grants exactly the {len(sso_calls())} sso: calls made")


def selftest(trailguard):
    bad = """
Resources:
  Loose:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {AWS: "*"}, Action: sts:AssumeRole}]
      Policies:
        - PolicyName: loose
          PolicyDocument:
            Statement: [{Effect: Allow, Action: [iam:PassRole, s3:*], Resource: "*"}]
"""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "bad.yaml"
        path.write_text(bad)
        problems = audit(trailguard, [path])
    wanted = ["wildcard action s3:*", "iam:PassRole on any role", "every action of s3", "any AWS principal"]
    missing = [w for w in wanted if not any(w in p for p in problems)]
    if missing:
        sys.exit(f"selftest: the check missed {missing}; it reported {problems}")
    print(f"infra selftest: a loose template is refused ({len(problems)} problems found)")


def stale_blocks(trailguard):
    problems = []
    for path, fmt, marker in GENERATED:
        text = path.read_text()
        begin, end = block(text, marker)
        if text[begin.end(): end.start()] != generated(trailguard, fmt):
            problems.append(f"{path.relative_to(ROOT)}: generated rules are stale (run `make patterns`)")
    return problems


def audit(trailguard, templates):
    problems = []
    patterns = json.loads(generated(trailguard, "json"))
    expected = {p["name"]: p for p in patterns["rules"]}
    config = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"trusted_accounts": ["111122223333"]}, config)
    config.close()
    for path in templates:
        template, errors = decode(str(path))
        if errors:
            problems.append(f"{path.name}: cannot be read: {errors}")
            continue
        for logical, resource in template.get("Resources", {}).items():
            for prefix in ("Rule", "Forward"):
                if resource.get("Type") == "AWS::Events::Rule" and logical.startswith(prefix) and logical[len(prefix):] in expected:
                    want = expected[logical[len(prefix):]]
                    props = resource["Properties"]
                    if props["EventPattern"] != want["pattern"]:
                        problems.append(f"{path.name} {logical}: pattern differs from the rules'")
                    state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" if want["read_only"] else "ENABLED"
                    if props["State"] != state:
                        problems.append(f"{path.name} {logical}: state {props['State']}, the rules need {state}")
        remediate = template.get("Resources", {}).get("RemediateRule")
        if remediate and remediate["Properties"]["EventPattern"] != patterns["remediation"]:
            problems.append(f"{path.name} RemediateRule: pattern differs from `trailguard patterns`' remediation pattern")
        checked = 0
        for where, kind, document in policies(template):
            for action in actions(document):
                if "*" in action:
                    problems.append(f"{path.name} {where}: wildcard action {action}")
            if kind == "resource":
                continue
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump(document, f)
            result = subprocess.run(
                [trailguard, "--config", config.name, "check-policy", "--kind", kind, "--account", "123456789012", f.name],
                capture_output=True, text=True,
            )
            checked += 1
            if result.returncode not in (0, 1):
                problems.append(f"{path.name} {where}: {result.stderr.strip()}")
            accepted = ACCEPTED.get((path.name, where), set())
            for line in result.stdout.splitlines():
                if not line.startswith("FLAGGED:"):
                    continue
                found = re.match(r"FLAGGED: privilege escalation: (\S+) on any resource", line)
                if found and found.group(1) in accepted:
                    continue
                problems.append(f"{path.name} {where}: {line}")
        print(f"{path.name}: {checked} IAM policies analysed")
    return problems


if __name__ == "__main__":
    commands = {"splice": splice, "check": check, "selftest": selftest}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2])
