//! Just enough HTTP/1.1 for the test servers: read one request (Content-Length or chunked body).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;

/// One request.
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn action(&self) -> String {
        if let Some(target) = self.header("x-amz-target") {
            return target.rsplit('.').next().unwrap_or(target).to_owned();
        }
        let body = String::from_utf8_lossy(&self.body);
        match body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
            Some(action) => action.to_owned(),
            None => self.s3_operation().to_owned(),
        }
    }

    /// S3 (REST) names its operation by method and path: `/bucket` or `/bucket/key`, path-style as the SDK
    /// sends it to an IP address, with `?x-id=` on some operations and `?list-type=2` on `ListObjectsV2`.
    fn s3_operation(&self) -> &'static str {
        let (path, query) = self.path.split_once('?').unwrap_or((&self.path, ""));
        let object = path.trim_start_matches('/').split_once('/').is_some_and(|(_, key)| !key.is_empty());
        match (self.method.as_str(), object) {
            ("HEAD", false) => "HeadBucket",
            ("HEAD", true) => "HeadObject",
            ("GET", true) => "GetObject",
            ("GET", false) if query.contains("list-type=2") => "ListObjectsV2",
            ("GET", false) => "ListObjects",
            ("PUT", true) => "PutObject",
            ("PUT", false) => "CreateBucket",
            ("DELETE", _) => "DeleteObject",
            _ => "unknown",
        }
    }

    /// Whether this is an S3 request (neither JSON nor query protocol): its errors are `<Error>` documents.
    pub fn s3(&self) -> bool {
        !self.json_protocol() && !String::from_utf8_lossy(&self.body).split('&').any(|kv| kv.starts_with("Action="))
    }

    pub fn json_protocol(&self) -> bool {
        self.header("x-amz-target").is_some()
    }
}

pub fn read_body(reader: &mut impl BufRead, length: Option<usize>, chunked: bool) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    } else {
        reader.read_to_end(&mut body).ok()?;
    }
    Some(body)
}

pub fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    let (mut length, mut chunked) = (None, false);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (k, v) = header.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse().ok(),
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let body = read_body(reader, Some(length.unwrap_or(0)).filter(|_| !chunked), chunked)?;
    Some(Request { method, path, headers, body })
}
