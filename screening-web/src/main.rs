//! `screening-web`: see `screening-web --help`.

use std::process::ExitCode;

use clap::Parser;
use screening_web::server::cli::{self, Cli};

// Rendering a page allocates many small strings; mimalloc serves 1.5x the clinic pages per second
// of the system allocator here (benches/web_clinic_page.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before the runtime's threads and buffers exist, so none of them sit in huge pages.
    screening_web::server::memory::keep_heap_in_small_pages();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(serve()),
        Err(error) => {
            eprintln!("screening-web: could not start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> ExitCode {
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
