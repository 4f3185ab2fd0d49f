//! `trailguard revoke`, the kill switch, run as on-call would run it, against moto.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use std::process::Command;

use harness::aws::{create_role, create_user_with_key, inline_policy};
use harness::moto::Moto;
use harness::runtime::binary;
use trailguard_core::policy::eval::{denies, Request};
use trailguard_core::policy::PolicyDocument;

fn trailguard(moto: &Moto, args: &[&str]) -> (i32, String) {
    let out = Command::new(binary("trailguard")).args(args).envs(moto.env()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kill_switch_revokes_exactly_one_session_once() {
    let moto = Moto::start();
    let iam = aws_sdk_iam::Client::new(&moto.sdk());
    let role_id = create_role(&iam, "dev-agent", "/").await;
    let args = ["revoke", "--role", "dev-agent", "--session", "agent-1", "--issued-before", "2026-11-27T10:00:00Z"];

    let (code, out) = trailguard(&moto, &args);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": done:"), "{out}");
    assert!(out.contains("acting in account 123456789012 as "), "names the account before acting: {out}");
    assert!(out.contains("issued before 2026-11-27T10:00:00Z") && !out.contains("before now"), "{out}");
    let written = inline_policy(&iam, "dev-agent", "trailguard-revocations").await.unwrap();
    let doc = PolicyDocument::from_value(&written).unwrap();
    let request = |session: &str, issued: &str| {
        Request::new("iam:CreateUser", "*")
            .with("aws:userid", &format!("{role_id}:{session}"))
            .with("aws:TokenIssueTime", issued)
    };
    assert!(denies(&doc, &request("agent-1", "2026-11-27T09:59:00Z")));
    assert!(!denies(&doc, &request("agent-2", "2026-11-27T09:59:00Z")));
    assert!(!denies(&doc, &request("agent-1", "2026-11-27T10:01:00Z")));

    let (code, out) = trailguard(&moto, &args);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": nothing to do:"), "running it again changes nothing: {out}");
    let again = inline_policy(&iam, "dev-agent", "trailguard-revocations").await.unwrap();
    assert_eq!(again, written);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kill_switch_dry_runs_refuses_protected_roles_and_deactivates_keys() {
    let moto = Moto::start();
    let iam = aws_sdk_iam::Client::new(&moto.sdk());
    create_role(&iam, "ops", "/").await;
    let (code, out) = trailguard(&moto, &["revoke", "--role", "ops", "--all-older", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": dry run, nothing changed: would write a deny to"), "{out}");
    assert!(!out.contains("would write: deny written") && out.contains("aws:TokenIssueTime"), "{out}");
    assert!(inline_policy(&iam, "ops", "trailguard-revocations").await.is_none());

    let sso = "AWSReservedSSO_Admin_0123456789abcdef";
    create_role(&iam, sso, "/aws-reserved/sso.amazonaws.com/").await;
    let (code, out) = trailguard(&moto, &["revoke", "--role", sso, "--all-older"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(": refused:") && out.contains("IAM Identity Center"), "{out}");
    assert!(inline_policy(&iam, sso, "trailguard-revocations").await.is_none());

    let key = create_user_with_key(&iam, "agent-bot", 0).await;
    let (code, out) = trailguard(&moto, &["revoke", "--user", "agent-bot", "--access-key", &key]);
    assert_eq!(code, 0, "{out}");
    let keys = iam.list_access_keys().user_name("agent-bot").send().await.unwrap();
    assert_eq!(keys.access_key_metadata()[0].status(), Some(&aws_sdk_iam::types::StatusType::Inactive));
    let (code, out) = trailguard(&moto, &["revoke", "--role", "ops"]);
    assert_eq!(code, 2, "a revocation without a target is a usage error: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kill_switch_acts_in_another_account_through_its_member_role() {
    let moto = Moto::start();
    let member = aws_sdk_iam::Client::new(&moto.sdk_in_account("111122223333").await);
    create_role(&member, "trailguard-member", "/").await;
    create_role(&member, "dev-agent", "/").await;
    let home = aws_sdk_iam::Client::new(&moto.sdk());
    create_role(&home, "dev-agent", "/").await;
    let (code, out) = trailguard(
        &moto,
        &[
            "revoke",
            "--role",
            "dev-agent",
            "--all-older",
            "--account",
            "111122223333",
            "--assume-role",
            "trailguard-member",
            "--external-id",
            "x",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("acting in account 111122223333"), "{out}");
    assert!(inline_policy(&member, "dev-agent", "trailguard-revocations").await.is_some());
    assert!(inline_policy(&home, "dev-agent", "trailguard-revocations").await.is_none());
}
