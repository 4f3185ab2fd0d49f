//! A moto server (the AWS API emulator) on a free 127.0.0.1 port, for one test, stopped when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

/// The home account moto gives to any credentials that are not from an assumed role.
pub const HOME_ACCOUNT: &str = "123456789012";

pub struct Moto {
    pub port: u16,
    child: Child,
}

/// Where the moto server binary is: `TRAILGUARD_MOTO_SERVER` (set by `make test`), else the project venv.
fn server_binary() -> PathBuf {
    std::env::var_os("TRAILGUARD_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server"))
}

impl Moto {
    /// Starts a server with AWS managed policies loaded, and waits until it answers.
    pub fn start() -> Moto {
        let binary = server_binary();
        assert!(binary.exists(), "{} is missing: run `make venv` first", binary.display());
        let port = free_port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(Stdio::null())
            .stderr(match std::env::var_os("TRAILGUARD_MOTO_LOG") {
                // For debugging a test: the server's request log.
                Some(path) => std::fs::File::create(path).map(Stdio::from).unwrap_or_else(|_| Stdio::null()),
                None => Stdio::null(),
            })
            .spawn()
            .expect("start moto server");
        let moto = Moto { port, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SDK configuration for the home account, talking to this server.
    pub fn sdk(&self) -> SdkConfig {
        self.sdk_with(Credentials::new("AKIAIOSFODNN7EXAMPLE", "test-secret", None, None, "moto"))
    }

    pub fn sdk_with(&self, credentials: Credentials) -> SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
            .build()
    }

    /// SDK configuration acting in another account, through STS `AssumeRole` as moto emulates it.
    pub async fn sdk_in_account(&self, account: &str) -> SdkConfig {
        let sts = aws_sdk_sts::Client::new(&self.sdk());
        let out = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/test-setup"))
            .role_session_name("test-setup")
            .send()
            .await
            .expect("assume role into the other account");
        let c = out.credentials().expect("credentials");
        self.sdk_with(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "moto",
        ))
    }

    /// The environment a Lambda binary needs to talk to this server as the home account.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint().as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "test-secret"),
            ("HOME_ACCOUNT_ID", HOME_ACCOUNT),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}
