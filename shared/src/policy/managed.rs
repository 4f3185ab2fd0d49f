//! AWS managed policies that trailguard classifies without asking IAM.
//!
//! Attaching an AWS managed policy is recorded with its ARN only. For the policies that matter most, trailguard
//! carries a summary written from the AWS Managed Policy Reference (the statements that decide the verdict, not
//! AWS's full text), so the scanner can judge them offline and the detector saves a look-up. Any other AWS
//! managed policy is fetched like a customer managed one.
//! <https://docs.aws.amazon.com/aws-managed-policy/latest/reference/policy-list.html>

/// The path-less name of an AWS managed policy ARN (`arn:aws:iam::aws:policy/job-function/ViewOnlyAccess` gives
/// `ViewOnlyAccess`), or `None` for any other ARN.
pub fn aws_managed_name(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (_, rest) = rest.split_once(":iam::aws:policy/")?;
    rest.rsplit('/').next()
}

/// A summary document for a well-known AWS managed policy.
pub fn summary(arn: &str) -> Option<&'static str> {
    let name = aws_managed_name(arn)?;
    SUMMARIES.iter().find(|(n, _)| *n == name).map(|(_, doc)| *doc)
}

const SUMMARIES: &[(&str, &str)] = &[
    ("AdministratorAccess", r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#),
    (
        "PowerUserAccess",
        r#"{"Statement":[{"Effect":"Allow","NotAction":["iam:*","organizations:*","account:*"],"Resource":"*"},
           {"Effect":"Allow","Action":["iam:CreateServiceLinkedRole","iam:DeleteServiceLinkedRole","iam:ListRoles",
             "organizations:DescribeOrganization","account:ListRegions","account:GetAccountInformation"],"Resource":"*"}]}"#,
    ),
    (
        "IAMFullAccess",
        r#"{"Statement":[{"Effect":"Allow","Action":["iam:*","organizations:DescribeAccount","organizations:DescribeOrganization",
           "organizations:DescribeOrganizationalUnit","organizations:DescribePolicy","organizations:ListChildren",
           "organizations:ListParents","organizations:ListPoliciesForTarget","organizations:ListRoots",
           "organizations:ListPolicies","organizations:ListTargetsForPolicy"],"Resource":"*"}]}"#,
    ),
    (
        "AmazonS3FullAccess",
        r#"{"Statement":[{"Effect":"Allow","Action":["s3:*","s3-object-lambda:*"],"Resource":"*"}]}"#,
    ),
    (
        "AmazonEC2FullAccess",
        r#"{"Statement":[{"Effect":"Allow","Action":["ec2:*","elasticloadbalancing:*","cloudwatch:*","autoscaling:*"],"Resource":"*"},
           {"Effect":"Allow","Action":"iam:CreateServiceLinkedRole","Resource":"*","Condition":{"StringEquals":{"iam:AWSServiceName":["autoscaling.amazonaws.com","ec2scheduled.amazonaws.com","elasticloadbalancing.amazonaws.com"]}}}]}"#,
    ),
    (
        "AWSLambda_FullAccess",
        r#"{"Statement":[{"Effect":"Allow","Action":["lambda:*","cloudformation:DescribeStacks","logs:DescribeLogGroups","iam:GetRole","iam:ListRoles"],"Resource":"*"},
           {"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringEquals":{"iam:PassedToService":"lambda.amazonaws.com"}}}]}"#,
    ),
    (
        "AmazonDynamoDBFullAccess",
        r#"{"Statement":[{"Effect":"Allow","Action":["dynamodb:*","dax:*","application-autoscaling:*"],"Resource":"*"}]}"#,
    ),
    (
        "SecretsManagerReadWrite",
        r#"{"Statement":[{"Effect":"Allow","Action":["secretsmanager:*","kms:DescribeKey","kms:ListAliases"],"Resource":"*"}]}"#,
    ),
    (
        "AmazonSSMFullAccess",
        r#"{"Statement":[{"Effect":"Allow","Action":["ssm:*","ec2messages:*","ssmmessages:*"],"Resource":"*"}]}"#,
    ),
    (
        "AmazonRDSFullAccess",
        r#"{"Statement":[{"Effect":"Allow","Action":["rds:*","cloudwatch:GetMetricData"],"Resource":"*"}]}"#,
    ),
    ("AmazonSQSFullAccess", r#"{"Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"}]}"#),
    ("AmazonSNSFullAccess", r#"{"Statement":[{"Effect":"Allow","Action":"sns:*","Resource":"*"}]}"#),
    (
        "CloudWatchFullAccess",
        r#"{"Statement":[{"Effect":"Allow","Action":["autoscaling:Describe*","cloudwatch:*","logs:*","sns:*"],"Resource":"*"}]}"#,
    ),
    (
        "AWSCloudTrail_FullAccess",
        r#"{"Statement":[{"Effect":"Allow","Action":["cloudtrail:*","s3:ListAllMyBuckets"],"Resource":"*"}]}"#,
    ),
    (
        "ReadOnlyAccess",
        r#"{"Statement":[{"Effect":"Allow","Action":["*:Get*","*:List*","*:Describe*","*:BatchGet*","*:View*"],"Resource":"*"}]}"#,
    ),
    ("ViewOnlyAccess", r#"{"Statement":[{"Effect":"Allow","Action":["*:List*","*:Describe*"],"Resource":"*"}]}"#),
    (
        "SecurityAudit",
        r#"{"Statement":[{"Effect":"Allow","Action":["*:Get*","*:List*","*:Describe*"],"Resource":"*"}]}"#,
    ),
    (
        "AmazonS3ReadOnlyAccess",
        r#"{"Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*","s3:Describe*"],"Resource":"*"}]}"#,
    ),
    (
        "CloudWatchReadOnlyAccess",
        r#"{"Statement":[{"Effect":"Allow","Action":["cloudwatch:Describe*","cloudwatch:Get*","cloudwatch:List*","logs:Get*","logs:Describe*"],"Resource":"*"}]}"#,
    ),
    (
        "AWSLambdaBasicExecutionRole",
        r#"{"Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{analyze, PolicyDocument};

    #[test]
    fn names_come_from_aws_arns_only() {
        assert_eq!(aws_managed_name("arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"), Some("ViewOnlyAccess"));
        assert_eq!(aws_managed_name("arn:aws:iam::123456789012:policy/AdministratorAccess"), None);
    }

    #[test]
    fn summaries_parse_and_classify() {
        for (name, doc) in SUMMARIES {
            let grants = analyze(&PolicyDocument::parse(doc).unwrap());
            let admin = matches!(*name, "AdministratorAccess" | "PowerUserAccess" | "IAMFullAccess");
            assert_eq!(grants.is_admin_class(), admin, "{name}");
            assert!(grants.passrole.is_none() || admin, "{name}");
            assert!(grants.unknown_actions.is_empty(), "{name}: {:?}", grants.unknown_actions);
        }
    }
}
