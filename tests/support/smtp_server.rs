//! A real SMTP server on loopback for the tests: the `mailin` SMTP protocol implementation
//! (the engine of `mailin-embedded`) driven over real TCP sockets by a small
//! thread-per-connection loop, with STARTTLS by rustls. `mailin-embedded` itself is not used
//! because it cannot be built without a second TLS stack (aws-lc or OpenSSL) that the crate
//! does not otherwise need.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin::{Action, Handler, Response, SessionBuilder};
use mailparse::{MailHeaderMap, ParsedMail};
use tokio_rustls::rustls;

/// Long enough for a loaded CI machine; the tests never wait this long when they pass.
pub const PATIENCE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// The server

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    pub data: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> ParsedMail<'_> {
        mailparse::parse_mail(&self.data).expect("a well-formed message")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.parsed().headers.get_first_value(name)
    }

    pub fn subject(&self) -> String {
        self.header("Subject").expect("a subject")
    }

    /// The decoded body of the part with this content type.
    pub fn part(&self, mime: &str) -> String {
        let parsed = self.parsed();
        assert_eq!(parsed.ctype.mimetype, "multipart/alternative");
        let part = parsed
            .subparts
            .iter()
            .find(|p| p.ctype.mimetype == mime)
            .unwrap_or_else(|| panic!("no {mime} part"));
        // Bodies travel with CRLF line ends.
        part.get_body()
            .expect("a decodable body")
            .replace("\r\n", "\n")
    }

    pub fn text(&self) -> String {
        self.part("text/plain")
    }

    pub fn html(&self) -> String {
        self.part("text/html")
    }
}

#[derive(Clone, Default)]
pub struct Recorder {
    pub mails: Arc<Mutex<Vec<Received>>>,
    /// Recipients the server refuses with 550.
    pub refuse: Arc<Vec<String>>,
    /// How many more recipients to put off with 451 (try again later).
    pub put_off: Arc<AtomicUsize>,
    /// `(user, password)` the server requires, if any.
    pub login: Option<(String, String)>,
    pub authenticated: Arc<Mutex<Vec<String>>>,
    /// Offer STARTTLS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Speak TLS from the first byte (`smtps`, port 465) with `tls`, instead of STARTTLS.
    pub implicit_tls: bool,
    /// How each implicit TLS handshake ended: `Ok` or the server's error.
    pub handshakes: Arc<Mutex<Vec<Result<(), String>>>>,
    pub current: Option<Received>,
}

impl Handler for Recorder {
    fn rcpt(&mut self, to: &str) -> Response {
        if self.refuse.iter().any(|r| r == to) {
            mailin::response::NO_MAILBOX
        } else if self
            .put_off
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            mailin::response::INTERNAL_ERROR
        } else {
            mailin::response::OK
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(Received {
            envelope_from: from.to_owned(),
            envelope_to: to.to_vec(),
            data: Vec::new(),
        });
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(current) = &mut self.current {
            current.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(mail) = self.current.take() {
            self.mails.lock().unwrap().push(mail);
        }
        mailin::response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        match &self.login {
            Some((u, p)) if u == user && p == password => {
                self.authenticated.lock().unwrap().push(user.to_owned());
                mailin::response::AUTH_OK
            }
            _ => mailin::response::INVALID_CREDENTIALS,
        }
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub recorder: Recorder,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(Recorder::default())
    }

    pub fn start_with(recorder: Recorder) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Self::serve(listener, recorder)
    }

    /// Serves on `listener` from a thread of its own, one thread per connection.
    pub fn serve(listener: TcpListener, recorder: Recorder) -> Self {
        let addr = listener.local_addr().unwrap();
        let mut builder = SessionBuilder::new("mx.test");
        if recorder.tls.is_some() && !recorder.implicit_tls {
            builder.enable_start_tls();
        }
        if recorder.login.is_some() {
            builder.enable_auth(mailin::AuthMechanism::Plain);
            if recorder.tls.is_none() {
                builder.insecure_enable_plaintext_auth();
            }
        }
        let handler = recorder.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let builder = builder.clone();
                let handler = handler.clone();
                std::thread::spawn(move || converse(stream, &builder, handler));
            }
        });
        Self { addr, recorder }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn mails(&self) -> Vec<Received> {
        self.recorder.mails.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let mails = self.mails();
            if mails.len() >= count || tokio::time::Instant::now() > deadline {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn converse(stream: TcpStream, builder: &SessionBuilder, handler: Recorder) {
    let ip = stream
        .peer_addr()
        .map_or(IpAddr::from([127, 0, 0, 1]), |a| a.ip());
    let tls = handler.tls.clone();
    if handler.implicit_tls {
        let config = tls.expect("implicit TLS needs a configuration");
        return converse_in_tls(stream, config, builder, handler, ip);
    }
    let mut session = builder.build(ip, handler);
    let mut plain = BufReader::new(stream);
    if session.greeting().write_to(plain.get_mut()).is_err() {
        return;
    }
    if !run_session(&mut session, &mut plain) {
        return;
    }
    // STARTTLS: the rest of the session is encrypted.
    let Some(config) = tls else { return };
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut encrypted = BufReader::new(rustls::StreamOwned::new(connection, plain.into_inner()));
    session.tls_active();
    run_session(&mut session, &mut encrypted);
}

/// An `smtps` session: the TLS handshake first, then SMTP inside it.
fn converse_in_tls(
    mut stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    builder: &SessionBuilder,
    handler: Recorder,
    ip: IpAddr,
) {
    let Ok(mut connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let handshake = connection
        .complete_io(&mut stream)
        .map(drop)
        .map_err(|e| e.to_string());
    let failed = handshake.is_err();
    handler.handshakes.lock().unwrap().push(handshake);
    if failed {
        return;
    }
    let mut session = builder.build(ip, handler);
    session.tls_active();
    let mut encrypted = BufReader::new(rustls::StreamOwned::new(connection, stream));
    if session
        .greeting()
        .write_to(encrypted.get_mut())
        .and_then(|()| encrypted.get_mut().flush())
        .is_err()
    {
        return;
    }
    run_session(&mut session, &mut encrypted);
}

/// Runs SMTP commands until the client leaves; returns whether it asked for STARTTLS.
pub fn run_session<S: Read + Write>(
    session: &mut mailin::Session<Recorder>,
    stream: &mut BufReader<S>,
) -> bool {
    let mut line = Vec::new();
    loop {
        line.clear();
        match stream.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        let response = session.process(&line);
        let writer = stream.get_mut();
        match response.action {
            Action::NoReply => continue,
            Action::Reply => {
                if response
                    .write_to(writer)
                    .and_then(|()| writer.flush())
                    .is_err()
                {
                    return false;
                }
            }
            Action::Close => {
                let _ = response.write_to(writer).and_then(|()| writer.flush());
                return false;
            }
            Action::UpgradeTls => {
                return response
                    .write_to(writer)
                    .and_then(|()| writer.flush())
                    .is_ok();
            }
        }
    }
}
