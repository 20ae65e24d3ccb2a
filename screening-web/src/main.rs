//! `screening-web`: see `screening-web --help`.

use std::process::ExitCode;

use screening_web::server::cli;

// Rendering a page allocates many small strings; mimalloc serves 1.5x the clinic pages per second
// of the system allocator here (benches/web_clinic_page.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args, |name| std::env::var(name).ok()) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("screening-web: {error}");
            return ExitCode::from(2);
        }
    };
    match cli::run(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("screening-web: {error}");
            ExitCode::FAILURE
        }
    }
}
