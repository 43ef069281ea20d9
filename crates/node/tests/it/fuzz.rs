//! A seeded fuzz of every route: at least 100,000 requests per route (set
//! `PLEXSPACES_FUZZ_REQUESTS` to change it, `PLEXSPACES_FUZZ_SEED` to change the seed), sent
//! over keep-alive connections, each answered with a status from the catalogue (and, for an
//! error, a problem+json body with a catalogued code); the node answers a health check after.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use plexspaces_node::Options;
use plexspaces_types::ErrorCode;

use crate::{TestNode, http};

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.below(options.len())]
    }
}

/// A path segment: usually valid, sometimes hostile.
fn segment(rng: &mut Rng, valid: &str) -> String {
    match rng.below(10) {
        0..=4 => valid.to_owned(),
        5 => format!("{valid}{}", rng.below(1000)),
        6 => rng
            .pick(&["%00", "%2F", "..", "%ZZ", "%C3%28", "a%20b", "%E2%82%AC", "é", "-x", "_"])
            .to_owned(),
        7 => "a".repeat(rng.below(600) + 1),
        8 => {
            let bytes: String =
                (0..rng.below(20) + 1).map(|_| format!("%{:02X}", rng.below(256))).collect();
            bytes
        }
        _ => rng.pick(&["default", "acme", "echo", "0", "Z.z-9"]).to_owned(),
    }
}

fn query(rng: &mut Rng) -> String {
    if rng.chance(40) {
        return String::new();
    }
    let mut pairs = Vec::new();
    for _ in 0..rng.below(4) + 1 {
        let key = rng.pick(&["invocation", "timeout_ms", "action", "n", "x", "", "%ZZ", "a%00"]);
        let value = match rng.below(8) {
            0 => rng.pick(&["call", "tell", "ask", "cast", "maybe", ""]).to_owned(),
            1 => rng.next().to_string(),
            2 => format!("-{}", rng.below(100)),
            3 => rng
                .pick(&["%7B%22a%22%3A1%7D", "%5B1%2C2", "null", "true", "1e999", "%FF", "%"])
                .to_owned(),
            4 => "9".repeat(rng.below(40) + 1),
            _ => rng.pick(&["hi", "0", "1", "300000", "300001", "50"]).to_owned(),
        };
        pairs.push(format!("{key}={value}"));
    }
    format!("?{}", pairs.join("&"))
}

fn body(rng: &mut Rng, limit: usize) -> Vec<u8> {
    match rng.below(12) {
        0 => Vec::new(),
        1 => br#"{"action":"x"}"#.to_vec(),
        2 => format!(
            r#"{{"action":"{}","n":{}}}"#,
            rng.pick(&["a", "", "*", "run", "\\u0000"]),
            rng.next()
        )
        .into_bytes(),
        3 => (0..rng.below(200)).map(|_| (rng.next() & 0xff) as u8).collect(),
        4 => "[".repeat(rng.below(300) + 1).into_bytes(),
        5 => br#"{"action":7}"#.to_vec(),
        6 => br#"{"action":"x","pad":""#.to_vec(),
        7 => vec![b'a'; limit + 1 + rng.below(100)],
        8 => format!(r#"{{"action":null,"deep":{}}}"#, "[".repeat(100) + &"]".repeat(100))
            .into_bytes(),
        9 => b"\xff\xfe{}".to_vec(),
        10 => br#"[1,2,3]"#.to_vec(),
        _ => format!(r#"{{"action":"go","s":"{}"}}"#, "é".repeat(rng.below(50))).into_bytes(),
    }
}

/// One request's bytes: method, path, headers and body, with framing kept valid (a declared
/// length always matches the body) so the connection stays usable.
fn request(rng: &mut Rng, method: &str, path: &str, limit: usize) -> Vec<u8> {
    let method = if rng.chance(8) {
        rng.pick(&["PUT", "PATCH", "OPTIONS", "DELETE", "GET", "POST", "HEAD", "BREW"])
    } else {
        method
    };
    let body = if method == "GET" && rng.chance(80) { Vec::new() } else { body(rng, limit) };
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: fuzz\r\n");
    if rng.chance(80) {
        let content_type = rng.pick(&[
            "application/json",
            "application/json; charset=utf-8",
            "application/problem+json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
            "application/json\u{0}",
        ]);
        head.push_str(&format!("Content-Type: {}\r\n", content_type.replace('\u{0}', "%00")));
    }
    if rng.chance(20) {
        let key = match rng.below(4) {
            0 => "k".repeat(rng.below(300) + 1),
            1 => "has space".to_owned(),
            2 => String::new(),
            _ => format!("key-{}", rng.below(50)),
        };
        head.push_str(&format!("Idempotency-Key: {key}\r\n"));
    }
    if rng.chance(5) {
        head.push_str("Authorization: Bearer nothing\r\n");
    }
    let chunked = !body.is_empty() && rng.chance(20);
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let mut bytes = head.into_bytes();
        for piece in body.chunks(rng.below(64) + 1) {
            bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            bytes.extend_from_slice(piece);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
        return bytes;
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

/// A keep-alive connection that reads one response at a time.
struct Connection {
    address: SocketAddr,
    reader: Option<BufReader<TcpStream>>,
}

impl Connection {
    /// Sends `bytes` and returns (status, content type, body); reconnects when the server
    /// closed the previous connection.
    fn exchange(&mut self, bytes: &[u8], head_request: bool) -> (u16, String, Vec<u8>) {
        // A server may close a kept-alive connection after a response (a 413 whose body it did
        // not read): a request that meets a closed connection is sent again on a new one, once.
        let reused = self.reader.is_some();
        match self.try_exchange(bytes, head_request) {
            Some(answer) => answer,
            None if reused => {
                self.reader = None;
                self.try_exchange(bytes, head_request).unwrap_or_else(|| no_response(bytes))
            }
            None => no_response(bytes),
        }
    }

    fn try_exchange(&mut self, bytes: &[u8], head_request: bool) -> Option<(u16, String, Vec<u8>)> {
        if self.reader.is_none() {
            let stream = TcpStream::connect(self.address).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            stream.set_nodelay(true).unwrap();
            self.reader = Some(BufReader::new(stream));
        }
        let reader = self.reader.as_mut().unwrap();
        reader.get_mut().write_all(bytes).unwrap();
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status: u16 =
            status_line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| {
                panic!(
                    "no response to {:?}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                )
            });
        let (mut length, mut content_type, mut close, mut chunked) =
            (0, String::new(), false, false);
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "content-type" => content_type = value.trim().to_owned(),
                "connection" => close = value.trim().eq_ignore_ascii_case("close"),
                "transfer-encoding" => chunked = value.trim().eq_ignore_ascii_case("chunked"),
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let size = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if !head_request {
            body.resize(length, 0);
            reader.read_exact(&mut body).unwrap();
        }
        if close {
            self.reader = None;
        }
        Some((status, content_type, body))
    }
}

fn no_response(bytes: &[u8]) -> ! {
    panic!("no response to {:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)]))
}

fn requests_per_route() -> usize {
    std::env::var("PLEXSPACES_FUZZ_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000)
}

#[test]
fn fuzzed_requests_get_catalogued_answers_and_the_node_stays_up() {
    let limit = 1024;
    let node = TestNode::start(Options { max_body_bytes: limit, ..Options::default() });
    let seed: u64 = std::env::var("PLEXSPACES_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let per_route = requests_per_route();
    // (port, method, route template); `{t}`, `{n}`, `{a}`, `{k}` are fuzzed segments.
    let routes: [(SocketAddr, &str, &str); 17] = [
        (node.invoke(), "POST", "/api/v1/actors/{t}/{n}/{a}"),
        (node.invoke(), "POST", "/api/v1/actors/{t}/{n}/{a}/{k}"),
        (node.invoke(), "GET", "/api/v1/actors/{t}/{n}/{a}"),
        (node.invoke(), "GET", "/api/v1/actors/{t}/{n}/{a}/{k}"),
        (node.invoke(), "GET", "/api/v1/openapi.json"),
        (node.invoke(), "GET", "/healthz"),
        (node.invoke(), "GET", "/readyz"),
        (node.invoke(), "GET", "/{k}/{t}"),
        (node.admin(), "GET", "/api/v1/types"),
        (node.admin(), "GET", "/api/v1/actors/{t}/{n}/{a}"),
        (node.admin(), "GET", "/api/v1/actors/{t}/{n}/{a}/{k}/state"),
        (node.admin(), "DELETE", "/api/v1/actors/{t}/{n}/{a}/{k}"),
        (node.admin(), "GET", "/api/v1/status"),
        (node.admin(), "GET", "/metrics"),
        (node.admin(), "GET", "/api/v1/openapi.json"),
        (node.admin(), "GET", "/healthz"),
        (node.admin(), "GET", "/readyz"),
    ];
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    let statuses: Vec<u16> =
        ErrorCode::ALL.iter().map(|code| code.http_status()).chain([200, 202, 204]).collect();
    let threads: Vec<_> = routes
        .into_iter()
        .enumerate()
        .map(|(index, (address, method, template))| {
            let codes = codes.clone();
            let statuses = statuses.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let mut connection = Connection { address, reader: None };
                for _ in 0..per_route {
                    let path = template
                        .replace("{t}", &segment(&mut rng, "acme"))
                        .replace("{n}", &segment(&mut rng, "default"))
                        .replace("{a}", &segment(&mut rng, "echo"))
                        .replace("{k}", &segment(&mut rng, "f1"));
                    let path = format!("{path}{}", query(&mut rng));
                    let bytes = request(&mut rng, method, &path, limit);
                    let head_request = bytes.starts_with(b"HEAD ");
                    let (status, content_type, body) = connection.exchange(&bytes, head_request);
                    assert!(
                        statuses.contains(&status),
                        "status {status} for {:?}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                    );
                    if status >= 400 && !head_request {
                        assert_eq!(content_type, "application/problem+json", "{status} for {path}");
                        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        let code = problem["code"].as_str().unwrap_or_default();
                        assert!(codes.contains(&code), "uncatalogued code {code:?} for {path}");
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(http::get(node.invoke(), "/healthz").status, 200);
    assert_eq!(http::get(node.admin(), "/healthz").status, 200);
}
