//! A client that writes its whole body before it reads (Python's `http.client`, many
//! scripts) must still read the answer the collector gives early: `413` for a body over the
//! limit, decided on its `Content-Length` before the body arrives. The collector reads and
//! throws away what follows, within bounds, then closes. Through the real binary, over real
//! sockets.
#![cfg(feature = "cli")]

#[path = "support/served.rs"]
mod served;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use served::Served;

/// A Reporting API batch of about 1.4 MB, as one big page's reports would make.
fn big_batch() -> Vec<u8> {
    let item = r#"{"type":"csp-violation","age":1,"url":"https://app.example/","body":{"documentURL":"https://app.example/","blockedURL":"inline","effectiveDirective":"style-src-attr","originalPolicy":"default-src 'self'","disposition":"enforce"}}"#;
    let n = 1_400_000 / (item.len() + 1);
    format!("[{}]", vec![item; n].join(",")).into_bytes()
}

/// Writes the request whole, then reads the answer's status line and headers.
fn write_then_read(served: &Served, body: &[u8]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(served.addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let head = format!(
        "POST /csp-report HTTP/1.1\r\nHost: x\r\nContent-Type: application/reports+json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf)? {
            0 => break,
            n => answer.extend_from_slice(&buf[..n]),
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[test]
fn a_client_that_writes_first_reads_its_413_every_time() {
    let served = Served::start(&["--no-store"]);
    let body = big_batch();
    assert!(body.len() > 1024 * 1024, "over the default limit");
    for attempt in 1..=20 {
        let answer = write_then_read(&served, &body)
            .unwrap_or_else(|e| panic!("attempt {attempt}: the answer was lost: {e}"));
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "attempt {attempt}: {answer:?}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer:?}"
        );
    }
    served.stop();
}

#[test]
fn what_is_thrown_away_is_bounded_in_size_and_time() {
    let served = Served::start(&["--no-store"]);
    // Claims a gigabyte and sends it as fast as it can: the collector answers, reads a few
    // MiB more, then closes.
    let mut stream = TcpStream::connect(served.addr).unwrap();
    stream
        .write_all(
            b"POST /csp-report HTTP/1.1\r\nHost: x\r\nContent-Type: application/reports+json\r\nContent-Length: 1073741824\r\n\r\n",
        )
        .unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let started = Instant::now();
    let mut written = 0usize;
    let error = loop {
        match stream.write(&chunk) {
            Ok(n) => written += n,
            Err(error) => break error,
        }
        assert!(
            written < 256 * 1024 * 1024 && started.elapsed() < Duration::from_secs(30),
            "still reading after {written} bytes and {:?}",
            started.elapsed()
        );
    };
    assert!(
        matches!(
            error.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
        ),
        "{error}"
    );
    assert!(written < 64 * 1024 * 1024, "{written} bytes taken");

    // A client that sends slowly is cut off by time.
    let mut slow = TcpStream::connect(served.addr).unwrap();
    slow.write_all(
        b"POST /csp-report HTTP/1.1\r\nHost: x\r\nContent-Type: application/reports+json\r\nContent-Length: 1073741824\r\n\r\n",
    )
    .unwrap();
    let started = Instant::now();
    let cut = loop {
        if slow.write_all(&chunk[..1024]).is_err() {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never cut off");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(cut < Duration::from_secs(15), "cut off after {cut:?}");
    let _ = slow.shutdown(Shutdown::Both);
    served.stop();
}
