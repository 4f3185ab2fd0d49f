//! The IAM action behind a CloudTrail event, for people: CloudTrail names some events after the API version
//! that served them (Lambda's `UpdateFunctionCode20150331v2`), and names the service by its endpoint
//! (`lambda.amazonaws.com`); the action a policy would name is `lambda:UpdateFunctionCode`.

use trailguard_core::policy::catalogue::Catalogue;

/// `lambda:UpdateFunctionCode` for `lambda.amazonaws.com` `UpdateFunctionCode20150331v2`; the event as
/// CloudTrail writes it (`signin.amazonaws.com ConsoleLogin`) when it is no IAM action the catalogue knows.
pub fn iam_action(event_source: &str, event_name: &str) -> String {
    let service = event_source.split('.').next().unwrap_or(event_source);
    let service = match service {
        "monitoring" => "cloudwatch",
        "email" => "ses",
        other => other,
    };
    let action = format!("{service}:{}", without_version(event_name));
    match Catalogue::get().index_of(&action) {
        Some(_) => action,
        None => format!("{event_source} {event_name}"),
    }
}

/// A finding's title with the event named by its IAM action where the title names it as CloudTrail writes it.
pub fn title(finding: &trailguard_core::Finding) -> String {
    let action = iam_action(&finding.event_source, &finding.event_name);
    match action.split_once(':').map(|(_, name)| name).filter(|name| *name != finding.event_name) {
        Some(name) => finding.title.replace(&finding.event_name, name),
        None => finding.title.clone(),
    }
}

/// An event name without its API-version suffix: `UpdateFunctionCode20150331v2` is `UpdateFunctionCode`.
fn without_version(name: &str) -> &str {
    let digits = |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    let unversioned = match name.rfind('v') {
        Some(v) if digits(name.get(v + 1..)) => name.get(..v).unwrap_or(name),
        _ => name,
    };
    match unversioned.len().checked_sub(8) {
        Some(start) if start > 0 && digits(unversioned.get(start..)) => unversioned.get(..start).unwrap_or(name),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_iam_actions() {
        assert_eq!(iam_action("lambda.amazonaws.com", "UpdateFunctionCode20150331v2"), "lambda:UpdateFunctionCode");
        assert_eq!(iam_action("lambda.amazonaws.com", "AddPermission20150331v2"), "lambda:AddPermission");
        assert_eq!(iam_action("lambda.amazonaws.com", "DeleteFunction20150331"), "lambda:DeleteFunction");
        assert_eq!(iam_action("iam.amazonaws.com", "AttachRolePolicy"), "iam:AttachRolePolicy");
        assert_eq!(iam_action("monitoring.amazonaws.com", "DeleteAlarms"), "cloudwatch:DeleteAlarms");
        assert_eq!(iam_action("signin.amazonaws.com", "ConsoleLogin"), "signin.amazonaws.com ConsoleLogin");
    }
}
