//! Extending the reports table with columns of your own.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@localhost/app cargo run --example postgres_custom_columns --features postgres
//! ```
//!
//! Adds three columns to the table, each filled from the report (which carries the request
//! facts too: user agent, client address): the document's host, the tenant the document
//! belongs to, and whether the browser is a Chromium one. Then writes two reports and reads the
//! columns back.

use tower_csp_reports::postgres::{CustomColumn, PostgresStore};
use tower_csp_reports::{Report, ReportBatch, ReportSink};

fn host(report: &Report) -> Option<String> {
    let uri = report.document()?;
    let rest = uri.split("://").nth(1)?;
    rest.split(['/', '?', '#']).next().map(str::to_owned)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL, e.g. postgres://postgres@localhost/postgres")?;

    let store = PostgresStore::builder_from_url(&url)
        .table("app_csp_reports")
        .column(CustomColumn::new("document_host", "text", |r| {
            Box::new(host(r))
        }))
        .column(CustomColumn::new("tenant", "varchar(32)", |r| {
            // Tenants live on their own subdomain: acme.app.example -> acme.
            let tenant = host(r).and_then(|h| h.strip_suffix(".app.example").map(str::to_owned));
            Box::new(tenant)
        }))
        .column(CustomColumn::new("chromium", "boolean", |r| {
            Box::new(r.user_agent.as_deref().map(|ua| ua.contains("Chrome/")))
        }))
        .build()?;
    store.migrate().await?;

    let mut from_chrome = Report::csp(
        "https://acme.app.example/billing?x=1",
        "script-src-elem",
        "inline",
    );
    from_chrome.user_agent = Some("Mozilla/5.0 Chrome/131.0.0.0 Safari/537.36".into());
    let from_firefox = Report::csp("https://www.example.org/", "img-src", "data");
    let ids = [from_chrome.id.to_string(), from_firefox.id.to_string()];
    store
        .sink()
        .send(&ReportBatch::from(vec![from_chrome, from_firefox]))
        .await?;

    let client = store.pool().get().await?;
    for id in ids {
        let row = client
            .query_one(
                "SELECT document_host, tenant, chromium FROM app_csp_reports WHERE id = $1::text::uuid",
                &[&id],
            )
            .await?;
        let (host, tenant, chromium): (Option<String>, Option<String>, Option<bool>) =
            (row.get(0), row.get(1), row.get(2));
        println!("{id}: host={host:?} tenant={tenant:?} chromium={chromium:?}");
    }
    Ok(())
}
