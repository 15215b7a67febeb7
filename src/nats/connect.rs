//! The servers to connect to, checked when the sink or consumer is built.

use std::fmt;
use std::time::Duration;

use async_nats::ServerAddr;

use super::error::NatsError;
use crate::ConfigError;

/// One or more server URLs (`nats://host:4222`, `tls://host:4222`, with `user:password@` if
/// needed), checked at build time.
#[derive(Clone)]
pub(crate) struct Servers {
    addrs: Vec<ServerAddr>,
    connection_name: String,
}

impl Servers {
    /// Parses a comma-separated list of URLs.
    pub(crate) fn parse(urls: &str, connection_name: String) -> Result<Self, ConfigError> {
        let addrs = urls
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(|url| {
                let invalid = |reason: String| ConfigError::Invalid {
                    setting: "nats url",
                    reason: format!("{:?}: {reason}", redact(url)),
                };
                let addr = url
                    .parse::<ServerAddr>()
                    .map_err(|error| invalid(error.to_string()))?;
                if addr.is_websocket() {
                    // The client is built without its WebSocket transport, to stay lean.
                    return Err(invalid("use nats:// or tls://".to_owned()));
                }
                Ok(addr)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if addrs.is_empty() {
            return Err(ConfigError::Invalid {
                setting: "nats url",
                reason: "at least one server URL is needed".to_owned(),
            });
        }
        Ok(Self {
            addrs,
            connection_name,
        })
    }

    /// Connects. The client then reconnects by itself, for ever, whenever the connection drops.
    pub(crate) async fn connect(&self) -> Result<async_nats::Client, NatsError> {
        async_nats::ConnectOptions::new()
            .name(&self.connection_name)
            .connection_timeout(Duration::from_secs(5))
            .connect(self.addrs.clone())
            .await
            .map_err(NatsError::connect)
    }
}

impl fmt::Debug for Servers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs may carry a password.
        let hosts: Vec<String> = self
            .addrs
            .iter()
            .map(|addr| format!("{}:{}", addr.host(), addr.port()))
            .collect();
        f.debug_struct("Servers")
            .field("hosts", &hosts)
            .field("connection_name", &self.connection_name)
            .finish()
    }
}

/// A URL without what may be a password, for an error message.
fn redact(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let name = || "test".to_owned();
        let servers = Servers::parse("nats://a.example:4222, tls://b.example:4333,", name())
            .expect("two servers");
        assert_eq!(servers.addrs.len(), 2);
        assert_eq!(
            format!("{servers:?}"),
            r#"Servers { hosts: ["a.example:4222", "b.example:4333"], connection_name: "test" }"#
        );
        let with_password = Servers::parse("nats://user:secret@c.example", name()).unwrap();
        assert!(!format!("{with_password:?}").contains("secret"));

        for bad in [
            "",
            " , ",
            "http://a.example",
            "ws://a.example",
            "nats://a.example:99999",
        ] {
            assert!(Servers::parse(bad, name()).is_err(), "{bad:?}");
        }
        let error = Servers::parse("ftp://user:secret@d.example", name()).unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}
