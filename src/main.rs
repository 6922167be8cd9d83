//! The `parley` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = parley::cli::Cli::parse();
    if let Err(error) = parley::cli::run(cli) {
        eprintln!("parley: {error}");
        std::process::exit(1);
    }
}
