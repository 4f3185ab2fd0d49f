//! A Lambda Runtime API server on 127.0.0.1 that drives a real Lambda binary, as the Lambda service would.
//!
//! It hands out the queued events one at a time at `GET /2018-06-01/runtime/invocation/next` with the headers
//! the runtime client reads, and records what the function posts back (`.../response`, `.../error`,
//! `/runtime/init/error`). <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::http::{read_request, Request};

/// What one invocation returned.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// `Ok(response)` or `Err(error body)`.
    pub result: Result<Value, Value>,
    /// From handing the event to the function to its answer: the invocation's duration as Lambda bills it.
    pub elapsed: Duration,
}

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub invocations: Vec<Invocation>,
    pub init_error: Option<Value>,
    /// The function's logs (stdout and stderr).
    pub logs: String,
    /// From starting the process to its first request for an event: the cold start.
    pub cold_start: Option<Duration>,
    /// `(invocations answered, resident set size in KiB)`, sampled while the function ran.
    pub memory: Vec<(usize, u64)>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Value)>,
    done: Vec<Invocation>,
    init_error: Option<Value>,
    /// When the function first asked for an event.
    first_request: Option<Instant>,
    /// When each event in flight was handed out, by request id.
    handed: std::collections::HashMap<String, Instant>,
}

/// Where cargo put the workspace's binaries: beside the test executable's `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

/// Runs `binary` with `env` until every event has been answered (or `timeout`), then stops it.
pub fn run_lambda(binary: &Path, env: &[(String, String)], events: Vec<Value>, timeout: Duration) -> Run {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind runtime api");
    let addr = listener.local_addr().expect("addr");
    let total = events.len();
    let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
    {
        let mut s = state.0.lock().unwrap();
        for (i, event) in events.into_iter().enumerate() {
            s.queue.push_back((format!("req-{i:04}-{}", std::process::id()), event));
        }
    }
    let server_state = Arc::clone(&state);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let st = Arc::clone(&server_state);
            std::thread::spawn(move || serve(stream, &st));
        }
    });
    let log_path = std::env::temp_dir().join(format!("trailguard-lambda-{}-{}.log", std::process::id(), addr.port()));
    let log = std::fs::File::create(&log_path).expect("log file");
    let started = Instant::now();
    let mut child = Command::new(binary)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", binary.file_name().and_then(|n| n.to_str()).unwrap_or("fn"))
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start lambda binary");
    let deadline = Instant::now() + timeout;
    let mut memory = Vec::new();
    let mut last_sample = Instant::now();
    loop {
        let (lock, cvar) = &*state;
        let s = lock.lock().unwrap();
        if last_sample.elapsed() >= Duration::from_millis(200) {
            if let Some(rss) = resident_kib(child.id()) {
                memory.push((s.done.len(), rss));
            }
            last_sample = Instant::now();
        }
        if s.done.len() >= total || s.init_error.is_some() {
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        assert!(Instant::now() < deadline, "lambda did not answer {total} event(s) in {timeout:?}");
        drop(cvar.wait_timeout(s, Duration::from_millis(50)).unwrap());
    }
    let _ = child.kill();
    let _ = child.wait();
    let logs = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    let s = state.0.lock().unwrap();
    let cold_start = s.first_request.map(|at| at.duration_since(started));
    Run { invocations: s.done.clone(), init_error: s.init_error.clone(), logs, cold_start, memory }
}

/// The process's resident set size, from `/proc/<pid>/status` (`VmRSS`, in KiB).
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn serve(stream: TcpStream, state: &Arc<(Mutex<State>, Condvar)>) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut writer = stream;
    loop {
        let Some(Request { method, path, body, .. }) = read_request(&mut reader) else { return };
        let (lock, cvar) = &**state;
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            // Long poll: wait for an event; an idle function simply waits here until it is stopped.
            let next = loop {
                let mut s = lock.lock().unwrap();
                s.first_request.get_or_insert_with(Instant::now);
                if let Some(next) = s.queue.pop_front() {
                    break next;
                }
                drop(cvar.wait_timeout(s, Duration::from_millis(100)).unwrap());
            };
            let (id, event) = next;
            lock.lock().unwrap().handed.insert(id.clone(), Instant::now());
            let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 60_000;
            let body = event.to_string();
            let headers = format!(
                "Lambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:trailguard-test\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n"
            );
            if respond(&mut writer, 200, &headers, &body).is_err() {
                return;
            }
            continue;
        }
        let value =
            serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
        {
            let mut s = lock.lock().unwrap();
            if path.ends_with("/runtime/init/error") {
                s.init_error = Some(value);
            } else if let Some(rest) = path.strip_prefix("/2018-06-01/runtime/invocation/") {
                let (id, kind) = rest.split_once('/').unwrap_or((rest, ""));
                let result = if kind == "response" { Ok(value) } else { Err(value) };
                let elapsed = s.handed.remove(id).map(|at| at.elapsed()).unwrap_or_default();
                s.done.push(Invocation { request_id: id.to_owned(), result, elapsed });
            }
        }
        cvar.notify_all();
        if respond(&mut writer, 202, "", r#"{"status":"OK"}"#).is_err() {
            return;
        }
    }
}

/// Writes the whole response at once: several small writes would meet Nagle's algorithm and delayed
/// acknowledgements and cost ~40 ms per request.
fn respond(stream: &mut TcpStream, status: u16, headers: &str, body: &str) -> std::io::Result<()> {
    let reason = if status == 200 { "OK" } else { "Accepted" };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()
}
