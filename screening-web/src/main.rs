//! `screening-web`: see `screening-web --help`.

use std::process::ExitCode;

use clap::Parser;
use screening_web::server::cli::{self, Cli};

// Rendering a page allocates many small strings; mimalloc serves 1.5x the clinic pages per second
// of the system allocator here (benches/web_clinic_page.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = cli.log.init() {
        eprintln!("screening-web: {error}");
        return ExitCode::from(2);
    }
    match cli::run(cli.command()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "screening-web stopped");
            eprintln!("screening-web: {error}");
            ExitCode::FAILURE
        }
    }
}
