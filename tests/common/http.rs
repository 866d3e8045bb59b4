//! The request side of the tests' HTTP servers on 127.0.0.1 (std::net): reading what a client
//! asked for, and logging it for the tests to check.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

/// A request as the server saw it: the path (with its query) and the Range header.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
}

/// Reads a request's head from `stream` (waiting five seconds at most for each line), logs it in
/// `log` and returns it.
pub fn read_request(stream: &TcpStream, log: &Mutex<Vec<Seen>>) -> std::io::Result<Seen> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_string());
        }
    }
    let seen = Seen { path, range };
    log.lock().expect("log").push(seen.clone());
    Ok(seen)
}
