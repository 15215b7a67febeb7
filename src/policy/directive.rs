//! What the builder knows about each directive: what its value holds, which directives it
//! falls back to (CSP Level 3, "directive fallback list"), and which directive of its family
//! the builder adds when the policy lacks it.

/// What a directive's value holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Values {
    /// A source list (`'self' https://cdn.example data:`).
    Sources,
    /// `frame-ancestors`: hosts, schemes, `'self'` and `'none'`, no keywords beyond those.
    AncestorSources,
    /// No value at all (`upgrade-insecure-requests`).
    Nothing,
    /// `sandbox`: `allow-*` flags.
    SandboxFlags,
    /// `report-uri`: one or more URLs.
    Urls,
    /// `report-to`: one endpoint name.
    EndpointName,
    /// `require-trusted-types-for`: `'script'`.
    TrustedTypesSinks,
    /// `trusted-types`: policy names, `'none'`, `'allow-duplicates'`, `*`.
    TrustedTypesPolicies,
    /// `webrtc`: `'allow'` or `'block'`.
    WebRtc,
    /// Tokens kept as they are (deprecated directives: `plugin-types`, `require-sri-for`).
    Tokens,
}

/// One known directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirectiveInfo {
    /// The name, lowercase.
    pub(crate) name: &'static str,
    /// What its value holds.
    pub(crate) values: Values,
    /// Where a browser looks, in order, for the list that governs a request of this type:
    /// the directive itself first. A directive that does not fall back has only itself.
    pub(crate) fallback: &'static [&'static str],
    /// The directive the builder adds when a violation of this one needs a source and the
    /// policy has only a directive further down the fallback list.
    pub(crate) family: &'static str,
}

impl DirectiveInfo {
    /// Whether violations of this directive are about loading something from a URL, so a
    /// source can be proposed for them.
    pub(crate) fn takes_sources(&self) -> bool {
        self.values == Values::Sources
    }

    /// Whether this is a fetch directive (one that `default-src` stands in for).
    pub(crate) fn is_fetch(&self) -> bool {
        self.fallback.last() == Some(&"default-src")
    }
}

const fn fetch(
    name: &'static str,
    fallback: &'static [&'static str],
    family: &'static str,
) -> DirectiveInfo {
    DirectiveInfo {
        name,
        values: Values::Sources,
        fallback,
        family,
    }
}

const fn alone(name: &'static str, values: Values) -> DirectiveInfo {
    DirectiveInfo {
        name,
        values,
        fallback: &[],
        family: name,
    }
}

/// Every directive the builder knows, fetch directives first in the order new ones are
/// written into a policy.
///
/// The `-elem`/`-attr` directives have `script-src` or `style-src` as their family: a policy
/// that lacks both gets `script-src`, which every browser knows, rather than
/// `script-src-elem`, which browsers before 2022 ignore (they would then block what the new
/// directive allows). `worker-src` and `frame-src` are their own family: adding to
/// `child-src` or `script-src`, which they fall back to, would widen what frames or scripts
/// may load.
static TABLE: &[DirectiveInfo] = &[
    fetch("default-src", &["default-src"], "default-src"),
    fetch("script-src", &["script-src", "default-src"], "script-src"),
    fetch(
        "script-src-elem",
        &["script-src-elem", "script-src", "default-src"],
        "script-src",
    ),
    fetch(
        "script-src-attr",
        &["script-src-attr", "script-src", "default-src"],
        "script-src",
    ),
    fetch("style-src", &["style-src", "default-src"], "style-src"),
    fetch(
        "style-src-elem",
        &["style-src-elem", "style-src", "default-src"],
        "style-src",
    ),
    fetch(
        "style-src-attr",
        &["style-src-attr", "style-src", "default-src"],
        "style-src",
    ),
    fetch("img-src", &["img-src", "default-src"], "img-src"),
    fetch("font-src", &["font-src", "default-src"], "font-src"),
    fetch("media-src", &["media-src", "default-src"], "media-src"),
    fetch(
        "connect-src",
        &["connect-src", "default-src"],
        "connect-src",
    ),
    fetch("child-src", &["child-src", "default-src"], "child-src"),
    fetch(
        "frame-src",
        &["frame-src", "child-src", "default-src"],
        "frame-src",
    ),
    fetch(
        "fenced-frame-src",
        &["fenced-frame-src", "frame-src", "child-src", "default-src"],
        "fenced-frame-src",
    ),
    fetch(
        "worker-src",
        &["worker-src", "child-src", "script-src", "default-src"],
        "worker-src",
    ),
    fetch("object-src", &["object-src", "default-src"], "object-src"),
    fetch(
        "manifest-src",
        &["manifest-src", "default-src"],
        "manifest-src",
    ),
    // Deprecated, still sent by old Chromium.
    fetch(
        "prefetch-src",
        &["prefetch-src", "default-src"],
        "prefetch-src",
    ),
    // Source lists that do not fall back to default-src.
    DirectiveInfo {
        fallback: &["base-uri"],
        ..alone("base-uri", Values::Sources)
    },
    DirectiveInfo {
        fallback: &["form-action"],
        ..alone("form-action", Values::Sources)
    },
    DirectiveInfo {
        fallback: &["frame-ancestors"],
        ..alone("frame-ancestors", Values::AncestorSources)
    },
    // Removed from the specification; kept so that policies that still carry it parse.
    DirectiveInfo {
        fallback: &["navigate-to"],
        ..alone("navigate-to", Values::Sources)
    },
    alone("sandbox", Values::SandboxFlags),
    alone("report-uri", Values::Urls),
    alone("report-to", Values::EndpointName),
    alone("upgrade-insecure-requests", Values::Nothing),
    alone("block-all-mixed-content", Values::Nothing),
    alone("require-trusted-types-for", Values::TrustedTypesSinks),
    alone("trusted-types", Values::TrustedTypesPolicies),
    alone("webrtc", Values::WebRtc),
    alone("plugin-types", Values::Tokens),
    alone("require-sri-for", Values::Tokens),
];

/// The directive called `name` (ASCII case-insensitive), if the builder knows it.
pub(crate) fn lookup(name: &str) -> Option<&'static DirectiveInfo> {
    TABLE
        .iter()
        .find(|info| info.name.eq_ignore_ascii_case(name))
}

/// Where a directive comes in the order new directives are written.
pub(crate) fn rank(name: &str) -> usize {
    TABLE
        .iter()
        .position(|info| info.name == name)
        .unwrap_or(TABLE.len())
}

/// Schemes proposed as sources, and the directive families where each is safe. A `data:` or
/// `blob:` URL is content its author wrote: harmless as an image, font or media file, and a
/// `blob:` worker is code the page's own scripts made; as a script, a style sheet, a frame
/// or a plugin it is whatever an injected tag says, so it is never proposed there.
pub(crate) static SAFE_SCHEMES: &[(&str, &[&str])] = &[
    ("data", &["img-src", "font-src", "media-src"]),
    ("blob", &["img-src", "media-src", "worker-src"]),
];

/// Whether the builder proposes `scheme:` for violations of the directive family `family`.
pub(crate) fn scheme_is_safe(scheme: &str, family: &str) -> bool {
    SAFE_SCHEMES
        .iter()
        .any(|(name, families)| *name == scheme && families.contains(&family))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_table() {
        // Level 3, section 6.8.3 ("Get the effective directive" / "directive fallback list").
        let cases: &[(&str, &[&str], &str)] = &[
            (
                "script-src-elem",
                &["script-src-elem", "script-src", "default-src"],
                "script-src",
            ),
            (
                "script-src-attr",
                &["script-src-attr", "script-src", "default-src"],
                "script-src",
            ),
            ("script-src", &["script-src", "default-src"], "script-src"),
            (
                "style-src-elem",
                &["style-src-elem", "style-src", "default-src"],
                "style-src",
            ),
            (
                "style-src-attr",
                &["style-src-attr", "style-src", "default-src"],
                "style-src",
            ),
            ("style-src", &["style-src", "default-src"], "style-src"),
            (
                "worker-src",
                &["worker-src", "child-src", "script-src", "default-src"],
                "worker-src",
            ),
            (
                "frame-src",
                &["frame-src", "child-src", "default-src"],
                "frame-src",
            ),
            (
                "fenced-frame-src",
                &["fenced-frame-src", "frame-src", "child-src", "default-src"],
                "fenced-frame-src",
            ),
            ("child-src", &["child-src", "default-src"], "child-src"),
            ("img-src", &["img-src", "default-src"], "img-src"),
            ("font-src", &["font-src", "default-src"], "font-src"),
            ("media-src", &["media-src", "default-src"], "media-src"),
            ("object-src", &["object-src", "default-src"], "object-src"),
            (
                "manifest-src",
                &["manifest-src", "default-src"],
                "manifest-src",
            ),
            (
                "connect-src",
                &["connect-src", "default-src"],
                "connect-src",
            ),
            ("default-src", &["default-src"], "default-src"),
            // No fallback to default-src.
            ("frame-ancestors", &["frame-ancestors"], "frame-ancestors"),
            ("form-action", &["form-action"], "form-action"),
            ("base-uri", &["base-uri"], "base-uri"),
            ("sandbox", &[], "sandbox"),
            ("report-uri", &[], "report-uri"),
            ("report-to", &[], "report-to"),
            (
                "upgrade-insecure-requests",
                &[],
                "upgrade-insecure-requests",
            ),
            ("block-all-mixed-content", &[], "block-all-mixed-content"),
            (
                "require-trusted-types-for",
                &[],
                "require-trusted-types-for",
            ),
            ("trusted-types", &[], "trusted-types"),
        ];
        for &(name, fallback, family) in cases {
            let info = lookup(name).unwrap_or_else(|| panic!("{name} is known"));
            assert_eq!(info.fallback, fallback, "{name}");
            assert_eq!(info.family, family, "{name}");
            // Every directive of a fallback list is itself a known fetch directive.
            for step in &fallback[1.min(fallback.len())..] {
                assert!(
                    lookup(step).is_some_and(DirectiveInfo::is_fetch),
                    "{name} via {step}"
                );
            }
        }
    }

    #[test]
    fn kinds() {
        let cases: &[(&str, bool, bool)] = &[
            // (name, is a fetch directive, takes sources from violations)
            ("img-src", true, true),
            ("default-src", true, true),
            ("worker-src", true, true),
            ("form-action", false, true),
            ("base-uri", false, true),
            ("frame-ancestors", false, false),
            ("sandbox", false, false),
            ("report-uri", false, false),
            ("trusted-types", false, false),
        ];
        for &(name, is_fetch, takes_sources) in cases {
            let info = lookup(name).expect("known");
            assert_eq!(info.is_fetch(), is_fetch, "{name}");
            assert_eq!(info.takes_sources(), takes_sources, "{name}");
        }
    }

    #[test]
    fn lookup_ignores_case_and_knows_nothing_else() {
        assert_eq!(lookup("Script-SRC").map(|i| i.name), Some("script-src"));
        for unknown in ["", "script", "scirpt-src", "script-src ", "default_src"] {
            assert!(lookup(unknown).is_none(), "{unknown:?}");
        }
    }

    #[test]
    fn safe_schemes() {
        let cases: &[(&str, &str, bool)] = &[
            ("data", "img-src", true),
            ("data", "font-src", true),
            ("data", "media-src", true),
            ("data", "script-src", false),
            ("data", "style-src", false),
            ("data", "frame-src", false),
            ("data", "object-src", false),
            ("data", "worker-src", false),
            ("data", "connect-src", false),
            ("blob", "worker-src", true),
            ("blob", "media-src", true),
            ("blob", "img-src", true),
            ("blob", "script-src", false),
            ("blob", "frame-src", false),
            ("filesystem", "img-src", false),
            ("javascript", "script-src", false),
        ];
        for &(scheme, family, safe) in cases {
            assert_eq!(
                scheme_is_safe(scheme, family),
                safe,
                "{scheme}: in {family}"
            );
        }
    }

    #[test]
    fn new_directives_are_written_in_table_order() {
        assert!(rank("default-src") < rank("script-src"));
        assert!(rank("script-src") < rank("img-src"));
        assert!(rank("img-src") < rank("connect-src"));
        assert_eq!(rank("not-a-directive"), TABLE.len());
    }
}
