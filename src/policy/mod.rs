//! The policy builder: the Content-Security-Policy your reports say you need.
//!
//! Deploy a strict policy in report-only mode, collect the violations for a while, then let
//! the builder propose, for each directive, the smallest source list that would have
//! allowed what the pages loaded. It starts from the current policy (the reports'
//! `original-policy`, or a base you give) and says what it changes and why.
//!
//! ```
//! use tower_csp_reports::Report;
//! use tower_csp_reports::policy::{Observation, Policy, PolicyBuilder};
//!
//! let page = "https://shop.example/cart";
//! let reports = [
//!     Report::csp(page, "script-src-elem", "https://shop.example/app.js"),
//!     Report::csp(page, "script-src-elem", "https://cdn.example/lib.js"),
//!     Report::csp(page, "img-src", "data"),
//!     Report::csp(page, "script-src-elem", "data"),
//!     Report::csp(page, "connect-src", "wss://live.example/feed"),
//!     Report::csp(page, "script-src-elem", "inline"),
//! ];
//! let observations = Observation::gather(&reports);
//!
//! let base = Policy::parse("default-src 'none'; report-uri /csp-report").unwrap();
//! let proposal = PolicyBuilder::new().build().unwrap().propose_from(&base, &observations).unwrap();
//! assert_eq!(
//!     proposal.header,
//!     "default-src 'none'; script-src 'self' https://cdn.example; img-src data:; \
//!      connect-src wss://live.example; report-uri /csp-report"
//! );
//! // The inline script is listed, not allowed; data: is never a script source.
//! assert_eq!(proposal.needs_nonce[0].code.as_str(), "inline");
//! assert!(!proposal.header.contains("unsafe-inline"));
//! assert!(proposal.to_string().contains("+ https://cdn.example"));
//! ```
//!
//! # What becomes a source
//!
//! | reported                                   | proposed                          |
//! |--------------------------------------------|-----------------------------------|
//! | a URL on the page's own origin             | `'self'`                          |
//! | a URL on another origin                    | `scheme://host[:port]` (no path)  |
//! | N or more subdomains of one parent         | `scheme://*.parent[:port]` ([`PolicyBuilder::wildcard_threshold`], default 3; never for IP addresses or `*.co.uk`-like parents) |
//! | `data` in `img-src`, `font-src`, `media-src` | `data:`                         |
//! | `blob` in `img-src`, `media-src`, `worker-src` | `blob:`                       |
//! | `data`/`blob` anywhere else (`script-src`, `style-src`, frames, objects) | nothing: skipped, it would let injected content run |
//! | `ws:`/`wss:` URLs in `connect-src`         | `ws://host[:port]` / `wss://…` (even on the page's host: not all browsers count them as `'self'`) |
//! | `inline`, `eval`, `wasm-eval`, Trusted Types | nothing: listed in [`Proposal::needs_nonce`] with pages, file, line and sample; [`PolicyBuilder::allow_unsafe_inline`] / [`allow_unsafe_eval`](PolicyBuilder::allow_unsafe_eval) / [`allow_wasm_unsafe_eval`](PolicyBuilder::allow_wasm_unsafe_eval) opt in |
//! | extension URLs, IPv6 hosts, anything unreadable | nothing: [`Proposal::skipped`], with the reason |
//!
//! # Which directive gets it
//!
//! Directives fall back as CSP Level 3 says: `script-src-elem` and `script-src-attr` to
//! `script-src`, then `default-src`; the same for styles; `worker-src` to `child-src`, then
//! `script-src`, then `default-src`; `frame-src` to `child-src`, then `default-src`; the other
//! fetch directives (`img-src`, `font-src`, `media-src`, `connect-src`, `object-src`,
//! `manifest-src`, …) straight to `default-src`. `frame-ancestors`, `form-action`,
//! `base-uri` and `sandbox` do not fall back. Reporting and other directives
//! (`report-uri`, `report-to`, `upgrade-insecure-requests`, `block-all-mixed-content`,
//! `require-trusted-types-for`, `trusted-types`, …) are carried over as they are.
//!
//! A source goes into the directive that applied, when that is the violated directive or
//! the head of its family (`script-src` for `script-src-elem`). When only a directive
//! further down applied (`default-src`, or `child-src` for a frame), the builder adds the
//! family's head — `script-src` for `script-src-elem`, `style-src` for `style-src-attr`,
//! `frame-src`, `worker-src`, `img-src` — starting from the list that applied. So an image
//! host never widens `default-src`, which would let scripts load from it too; and
//! `script-src`, unlike `script-src-elem`, is known to every browser, so an older one does
//! not fall back past the new source and block it.
//!
//! An unsafe keyword the settings allow goes into the violated directive itself
//! (`style-src-attr 'unsafe-inline'`, added if missing), so allowing `style` attributes
//! does not allow `<style>` elements; a browser too old for that directive keeps blocking
//! the code rather than allowing more.
//!
//! # Hostile input
//!
//! Reports come from anyone. A source is made only from the scheme, host and port of a
//! blocked URL, each checked against the CSP grammar (no `;`, `,`, white space, quotes or
//! control characters can get through), and parsed again before it goes into the header;
//! what fails is skipped, never echoed. A reported `original-policy` is read leniently: it
//! keeps directives and keywords it does not know when they are plain tokens, and leaves out
//! the rest (see [`Policy::parse_lenient`]). Text values in a proposal are escaped and cut.
//! Anyone can also send reports for sources or a policy of their choosing: the proposal
//! shows the reports and pages behind every source and which policy it started from;
//! [`PolicyBuilder::min_reports`] and a base policy guard against a few forged reports.
//!
//! # From a store
//!
//! [`Proposer::propose_from_store`] reads what the stored violations of a range say
//! ([`ReportStore::policy_evidence`](crate::store::ReportStore::policy_evidence): per
//! directive, each blocked value with its reports and pages, and the policies carried) and
//! proposes from it; `csp-reports policy` does that on the command line.
//!
//! # Output
//!
//! [`Proposal`] is `serde::Serialize`; its `Display` is the text for a terminal or a page,
//! [`Proposal::to_json`] the same for scripts. A `Proposal::header` holds only visible
//! ASCII and is a valid header value.

mod allows;
mod assemble;
mod blocked;
mod build;
mod directive;
mod error;
mod header;
mod observation;
mod observe;
mod parse;
mod proposal;
mod propose;
mod render;
mod source;
mod wildcard;

pub use blocked::Code;
pub use build::{BuildError, PolicyBuilder, Proposer};
pub use error::{Dropped, PolicyError};
pub use header::{Directive, Policy};
pub use observation::Observation;
pub use proposal::{
    AddedSource, ChangeKind, CurrentPolicy, DirectiveChange, MAX_PAGES, NeedsNonce, PolicyOrigin,
    Proposal, SkipReason, Skipped, Totals,
};
pub use propose::ProposeError;
