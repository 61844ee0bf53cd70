use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = match chain_tui::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout in full; a usage error is one line on stderr.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            return std::process::ExitCode::from(2);
        }
    };
    // A running node reports what it does; one-shot commands only warn.
    let default_level = match cli.command {
        Some(chain_tui::cli::Command::Node(_)) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match chain_tui::cli::run(cli).await {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
