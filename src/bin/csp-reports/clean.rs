//! `csp-reports clean`: retention.

use clap::Args as ClapArgs;
use jiff::Zoned;

use crate::Failure;
use crate::db::{DbArgs, failed};
use crate::time::{FORMS, parse_time};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    db: DbArgs,

    /// Delete reports received before this time (a duration means that long ago).
    #[arg(long, default_value = "1 week", long_help = format!("Delete reports received before this time: {FORMS}. A duration means that long ago."))]
    limit: String,

    /// Only count what would be deleted.
    #[arg(long)]
    dry_run: bool,
}

pub(crate) async fn run(args: &Args) -> Result<(), Failure> {
    let now = Zoned::now();
    let before = parse_time(&args.limit, &now).map_err(Failure::usage)?;
    let store = args.db.existing().await?.store;
    let local = before.to_zoned(now.time_zone().clone());
    eprintln!(
        "counting reports received before {} ...",
        local.strftime("%Y-%m-%d %H:%M:%S %Z")
    );
    let count = store
        .delete_older_than(before, true)
        .await
        .map_err(failed("cannot reach the database"))?;
    if args.dry_run {
        println!("{count} reports would be deleted (dry run)");
        return Ok(());
    }
    if count == 0 {
        println!("0 reports deleted");
        return Ok(());
    }
    eprintln!("deleting {count} reports ...");
    let deleted = store
        .delete_older_than(before, false)
        .await
        .map_err(failed("cannot delete"))?;
    println!("{deleted} reports deleted");
    Ok(())
}
