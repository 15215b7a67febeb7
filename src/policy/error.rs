//! [`PolicyError`], why a policy given by a person is refused, and [`Dropped`], what a
//! lenient reading of a reported one left out.

use std::fmt;

use serde::Serialize;

/// A policy that [`Policy::parse`](super::Policy::parse) refuses, naming the directive at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// Nothing but white space and semicolons.
    Empty,
    /// A comma: a header value with several policies. Give them one at a time.
    SeveralPolicies,
    /// A directive name that is not one of CSP Level 3 (or one of its deprecated ones).
    UnknownDirective {
        /// The name, as given.
        directive: String,
    },
    /// The same directive twice (browsers would ignore the second).
    DuplicateDirective {
        /// The name.
        directive: String,
    },
    /// A value that the directive does not take.
    InvalidValue {
        /// The directive's name.
        directive: String,
        /// The value, as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl PolicyError {
    /// The directive at fault, when there is one.
    pub fn directive(&self) -> Option<&str> {
        match self {
            Self::Empty | Self::SeveralPolicies => None,
            Self::UnknownDirective { directive }
            | Self::DuplicateDirective { directive }
            | Self::InvalidValue { directive, .. } => Some(directive),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the policy is empty"),
            Self::SeveralPolicies => {
                f.write_str("the policy holds a comma, which separates several policies: give one")
            }
            Self::UnknownDirective { directive } => {
                write!(f, "unknown directive {directive:?}")
            }
            Self::DuplicateDirective { directive } => {
                write!(f, "directive {directive:?} is given twice")
            }
            Self::InvalidValue {
                directive,
                value,
                reason,
            } => write!(f, "invalid value {value:?} in {directive:?}: {reason}"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// What [`Policy::parse_lenient`](super::Policy::parse_lenient) left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Dropped {
    /// The directive (empty when a whole directive or policy was left out).
    pub directive: String,
    /// What was left out, with control characters escaped and cut to 200 bytes.
    pub value: String,
    /// Why.
    pub reason: &'static str,
}
