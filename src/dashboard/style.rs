//! The stylesheet, served from the dashboard itself (`style-src 'self'`: no inline style).

use axum::response::IntoResponse;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

const CSS: &str = r#"
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dee7; --bg:#f6f7f9; --card:#fff; --accent:#2457c5; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
header { background:#1d2330; color:#fff; padding:.5rem 1rem; display:flex; flex-wrap:wrap; gap:.75rem; align-items:center; }
header a { color:#fff; text-decoration:none; padding:.25rem .5rem; border-radius:4px; }
header a.current { background:#3a4356; }
header .brand { font-weight:600; margin-right:1rem; }
header form { margin-left:auto; }
main { padding:1rem; max-width:1200px; margin:0 auto; }
h1 { font-size:1.4rem; margin:.5rem 0 1rem; }
h2 { font-size:1.1rem; margin:1.5rem 0 .5rem; }
a { color:var(--accent); }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(140px,1fr)); gap:.75rem; }
.card { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:.75rem; }
.card b { display:block; font-size:1.5rem; }
.card span { color:var(--muted); font-size:.85rem; }
.grid2 { display:grid; grid-template-columns:repeat(auto-fit,minmax(320px,1fr)); gap:1rem; }
table { border-collapse:collapse; width:100%; background:var(--card); border:1px solid var(--line); }
th, td { text-align:left; padding:.35rem .5rem; border-bottom:1px solid var(--line); vertical-align:top; }
td { overflow-wrap:anywhere; }
th { background:#eef1f5; font-weight:600; font-size:.85rem; }
td.num, th.num { text-align:right; white-space:nowrap; }
.scroll { overflow-x:auto; }
form.filters { display:flex; flex-wrap:wrap; gap:.5rem; align-items:end; margin-bottom:1rem; }
form.filters label { display:flex; flex-direction:column; font-size:.8rem; color:var(--muted); }
input, select, button, textarea { font:inherit; padding:.3rem .45rem; border:1px solid #b8c0cc; border-radius:4px; background:#fff; }
button { cursor:pointer; background:#eef1f5; }
button.primary { background:var(--accent); color:#fff; border-color:var(--accent); }
textarea { width:100%; min-height:4rem; }
.actions { display:flex; flex-wrap:wrap; gap:.5rem; margin:.5rem 0; }
.status { font-size:.8rem; padding:.05rem .4rem; border-radius:3px; background:#eef1f5; white-space:nowrap; }
.status.new { background:#fde2e1; } .status.acknowledged { background:#fff1c2; }
.status.ignored { background:#e5e7eb; } .status.fixed { background:#d5f2dc; }
.raw { font-family:ui-monospace,Menlo,Consolas,monospace; font-size:.85rem; }
pre { background:#fff; border:1px solid var(--line); padding:.75rem; overflow:auto; max-height:28rem; white-space:pre-wrap; overflow-wrap:anywhere; }
mark { background:#ffe08a; }
.note { color:var(--muted); }
.problem { background:#fde2e1; border:1px solid #f3b1ad; padding:.5rem .75rem; border-radius:4px; }
.pager { display:flex; gap:1rem; margin:.75rem 0; align-items:center; }
.login { max-width:22rem; margin:4rem auto; background:var(--card); border:1px solid var(--line); border-radius:6px; padding:1.5rem; }
.login input { width:100%; margin:.5rem 0 1rem; }
figure.chart { margin:0; background:var(--card); border:1px solid var(--line); border-radius:6px; padding:.5rem; }
figure.chart svg { width:100%; height:auto; display:block; }
.axis { stroke:#9aa3b2; stroke-width:1; }
.label { font-size:11px; fill:var(--muted); } .label.end { text-anchor:end; }
figcaption { font-size:.8rem; color:var(--muted); display:flex; flex-wrap:wrap; gap:.75rem; margin-top:.25rem; }
.swatch { display:inline-block; width:.8rem; height:.8rem; border-radius:2px; margin-right:.3rem; vertical-align:-1px; }
.c0 { fill:#2457c5; background:#2457c5; } .c1 { fill:#e0702b; background:#e0702b; }
.c2 { fill:#2f9e6a; background:#2f9e6a; } .c3 { fill:#c2395b; background:#c2395b; }
.c4 { fill:#7a55c7; background:#7a55c7; } .c5 { fill:#b59a12; background:#b59a12; }
.c6 { fill:#1794a8; background:#1794a8; } .c7 { fill:#8d95a3; background:#8d95a3; }
@media (max-width:640px) { main { padding:.5rem; } th.wide, td.wide { display:none; } }
"#;

/// `GET /style.css`.
pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
}
