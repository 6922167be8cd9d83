//! The `parley` binary: parses the command line and hands over to the library.

use clap::Parser;

/// jemalloc: with 10,000 parked polls the server holds mostly preallocated, barely touched
/// buffers (actix's 2 × 8 KiB per connection, a header map per request); jemalloc backs less
/// of them with memory and fragments less than glibc (measured: 21 KB vs 24 KB per poll).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = parley::cli::Cli::parse();
    if let Err(error) = parley::cli::run(cli) {
        eprintln!("parley: {error}");
        std::process::exit(1);
    }
}
