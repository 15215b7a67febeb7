//! The SMTP options, and sending one email (the summary).

use clap::Args as ClapArgs;
use tower_csp_reports::sink::smtp::lettre::message::{Mailbox, MultiPart};
use tower_csp_reports::sink::smtp::lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

use crate::Failure;

#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct MailArgs {
    /// The SMTP server: smtp://host:port, smtp://user:pass@host?tls=required (STARTTLS) or
    /// smtps://host (implicit TLS).
    #[arg(long, env = "CSP_REPORTS_SMTP_URL")]
    pub(crate) smtp_url: Option<String>,

    /// The sender's address.
    #[arg(
        long,
        env = "CSP_REPORTS_SMTP_FROM",
        default_value = "csp-reports@localhost"
    )]
    pub(crate) smtp_from: String,

    /// A recipient (repeat, or separate with commas).
    #[arg(long = "smtp-to", env = "CSP_REPORTS_SMTP_TO", value_delimiter = ',')]
    pub(crate) smtp_to: Vec<String>,
}

impl MailArgs {
    /// Whether mail is configured at all.
    pub(crate) fn configured(&self) -> bool {
        self.smtp_url.is_some() && !self.smtp_to.is_empty()
    }

    /// Fails when mail is needed but not configured.
    pub(crate) fn check(&self) -> Result<(), Failure> {
        if self.configured() {
            Ok(())
        } else {
            Err(Failure::usage(
                "email needs --smtp-url and at least one --smtp-to",
            ))
        }
    }

    pub(crate) async fn send(
        &self,
        subject: &str,
        text: String,
        html: String,
    ) -> Result<(), Failure> {
        self.check()?;
        let url = self.smtp_url.as_deref().unwrap_or_default();
        let mailbox = |address: &str| {
            address
                .parse::<Mailbox>()
                .map_err(|e| Failure::usage(format!("invalid email address {address:?}: {e}")))
        };
        let mut message = Message::builder()
            .from(mailbox(&self.smtp_from)?)
            .subject(subject);
        for to in &self.smtp_to {
            message = message.to(mailbox(to)?);
        }
        let message = message
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| Failure::runtime(format!("cannot build the email: {e}")))?;
        // The URL may hold a password: never repeat it in a message.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| Failure::usage(format!("invalid --smtp-url: {e}")))?
            .build();
        transport
            .send(message)
            .await
            .map_err(|e| Failure::runtime(format!("cannot send the email: {e}")))?;
        Ok(())
    }
}
