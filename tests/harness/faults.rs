//! A fault-injecting HTTP proxy on 127.0.0.1 between the AWS SDK and moto.
//!
//! It reads each request's API action (the `X-Amz-Target` header of JSON protocols, the `Action` form field
//! of query protocols such as IAM, STS and SNS, or S3's method and path), and for an action with a fault injected answers as AWS would
//! when throttling, failing or denying, waits before forwarding, or drops the connection. Everything else is
//! forwarded to moto unchanged. It counts the requests it saw per action, so a test can tell how often a call
//! was made (retried, or not repeated).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};

use super::http::{read_body, read_request, Request};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 `Throttling` (retryable).
    Throttle,
    /// 503 `ServiceUnavailable` (retryable).
    Unavailable,
    /// 403 `AccessDenied` (not retryable).
    Deny,
    /// Wait this long, then forward.
    Slow(Duration),
    /// Close the connection without an answer.
    Drop,
    /// S3's 503 `SlowDown` (retryable).
    SlowDown,
    /// S3's 404 `NoSuchKey` (an object listed, then gone).
    Missing,
}

/// A change made upstream just before one request is forwarded (given moto's port).
type Hook = Box<dyn FnOnce(u16) + Send>;

#[derive(Default)]
struct State {
    /// action -> (fault, how many more times)
    faults: HashMap<String, (Fault, usize)>,
    seen: HashMap<String, usize>,
    /// (a piece of the path, how many more matching requests before the hook runs, the hook)
    hooks: Vec<(String, usize, Option<Hook>)>,
}

pub struct FaultProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let st = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, upstream, &st));
            }
        });
        FaultProxy { port, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Injects `fault` into the next `times` requests for `action` (`usize::MAX`: all of them).
    pub fn inject(&self, action: &str, fault: Fault, times: usize) {
        self.state.lock().unwrap().faults.insert(action.to_owned(), (fault, times));
    }

    /// Runs `hook` once, given moto's port, just before the `nth` request (from 1) whose path holds `path` is
    /// forwarded: the world changes between two reads, exactly there.
    pub fn before(&self, path: &str, nth: usize, hook: impl FnOnce(u16) + Send + 'static) {
        self.state.lock().unwrap().hooks.push((path.to_owned(), nth, Some(Box::new(hook))));
    }

    pub fn clear(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// How many requests the proxy saw, per action.
    pub fn counts(&self) -> HashMap<String, usize> {
        self.state.lock().unwrap().seen.clone()
    }

    /// How many requests for `action` the proxy saw (faulted or forwarded).
    pub fn seen(&self, action: &str) -> usize {
        self.state.lock().unwrap().seen.get(action).copied().unwrap_or(0)
    }
}

fn serve(stream: TcpStream, upstream: u16, state: &Arc<Mutex<State>>) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut client = stream;
    while let Some(request) = read_request(&mut reader) {
        let action = request.action();
        let hook = state.lock().unwrap().hooks.iter_mut().find_map(|(piece, left, hook)| {
            if !request.path.contains(piece.as_str()) || *left == 0 {
                return None;
            }
            *left -= 1;
            if *left == 0 {
                hook.take()
            } else {
                None
            }
        });
        if let Some(hook) = hook {
            hook(upstream);
        }
        let fault = {
            let mut s = state.lock().unwrap();
            *s.seen.entry(action.clone()).or_default() += 1;
            match s.faults.get_mut(&action) {
                Some((fault, times)) if *times > 0 => {
                    *times = times.saturating_sub(1);
                    Some(*fault)
                }
                _ => None,
            }
        };
        let response = match fault {
            Some(Fault::Drop) => return,
            Some(Fault::Slow(delay)) => {
                std::thread::sleep(delay);
                forward(&request, upstream)
            }
            Some(Fault::SlowDown) => error(&request, 503, "SlowDown", "Please reduce your request rate."),
            Some(Fault::Missing) => error(&request, 404, "NoSuchKey", "The specified key does not exist."),
            Some(Fault::Throttle) => error(&request, 400, "Throttling", "Rate exceeded"),
            Some(Fault::Unavailable) => error(&request, 503, "ServiceUnavailable", "Service is unavailable, try again"),
            Some(Fault::Deny) => error(
                &request,
                403,
                "AccessDenied",
                &format!("User: arn:aws:sts::123456789012:assumed-role/trailguard-remediate/x is not authorized to perform: {}", action),
            ),
            None => forward(&request, upstream),
        };
        let Some(response) = response else { return };
        if client.write_all(&response).and_then(|_| client.flush()).is_err() {
            return;
        }
    }
}

/// An error as the service would send it, in the request's protocol.
fn error(request: &Request, status: u16, code: &str, message: &str) -> Option<Vec<u8>> {
    let (content_type, body) = if request.json_protocol() {
        ("application/x-amz-json-1.1", format!(r#"{{"__type":"{code}","message":"{message}"}}"#))
    } else if request.s3() {
        ("application/xml", format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>"))
    } else {
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
                 <RequestId>fault-injected</RequestId></ErrorResponse>"
            ),
        )
    };
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nx-amzn-ErrorType: {code}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    Some([head.into_bytes(), body.into_bytes()].concat())
}

/// Sends the request to moto on a fresh connection and returns moto's response, re-framed with a length.
fn forward(request: &Request, upstream: u16) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.path);
    for (k, v) in &request.headers {
        if !matches!(k.to_ascii_lowercase().as_str(), "connection" | "content-length" | "transfer-encoding") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", request.body.len()));
    up.write_all(head.as_bytes()).ok()?;
    up.write_all(&request.body).ok()?;
    let mut reader = BufReader::new(up);
    let mut status = String::new();
    reader.read_line(&mut status).ok()?;
    let mut headers = Vec::new();
    let (mut length, mut chunked) = (None, false);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
                "connection" => {}
                _ => headers.push(line.clone()),
            }
        }
    }
    // A HEAD answer says the length of a body it does not send.
    let body = if request.method == "HEAD" { Vec::new() } else { read_body(&mut reader, length, chunked)? };
    let mut out = status.trim_end().to_owned() + "\r\n";
    for h in headers {
        out.push_str(&h);
        out.push_str("\r\n");
    }
    let length = if request.method == "HEAD" { length.unwrap_or(0) } else { body.len() };
    out.push_str(&format!("Content-Length: {length}\r\n\r\n"));
    Some([out.into_bytes(), body].concat())
}
