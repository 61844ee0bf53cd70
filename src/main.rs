#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = match chain_tui::cli::Cli::try_parse_args() {
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
    let dashboard = cli.opens_dashboard();
    let default_level = match cli.command {
        Some(chain_tui::cli::Command::Node(_)) => "info",
        _ if dashboard => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_level.into());
    // The dashboard owns the terminal: logs go to DATA_DIR/chain-tui.log and the Log pane.
    // The demo logs to a file in its own temporary dir (it sets that up itself).
    #[cfg(feature = "demo")]
    let demo = matches!(cli.command, Some(chain_tui::cli::Command::Demo(_)));
    #[cfg(not(feature = "demo"))]
    let demo = false;
    let _log_guard = if demo {
        None
    } else if dashboard {
        match dashboard_log(&cli, filter) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("error: {e:#}");
                return std::process::ExitCode::FAILURE;
            }
        }
    } else {
        // Colour only on a terminal: a log written to a file or a pipe carries no ANSI codes.
        use std::io::IsTerminal;
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
        None
    };
    match chain_tui::cli::run(cli).await {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The dashboard's log: DATA_DIR/chain-tui.log (`attach.log` for `attach`) and the Log pane's ring.
#[cfg(feature = "tui")]
fn dashboard_log(
    cli: &chain_tui::cli::Cli,
    filter: tracing_subscriber::EnvFilter,
) -> anyhow::Result<Option<tracing_appender::non_blocking::WorkerGuard>> {
    let dir = cli.global.data_dir()?;
    // An attached dashboard keeps its own log: the node it shows may run on this data dir.
    let name = match cli.command {
        Some(chain_tui::cli::Command::Attach { .. }) => "attach.log",
        _ => "chain-tui.log",
    };
    chain_tui::term::logbuf::init_file(&dir, name, filter)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("cannot write the log in {}: {e}", dir.display()))
}

/// A build without the dashboard never opens it.
#[cfg(not(feature = "tui"))]
fn dashboard_log(
    _cli: &chain_tui::cli::Cli,
    _filter: tracing_subscriber::EnvFilter,
) -> anyhow::Result<Option<tracing_appender::non_blocking::WorkerGuard>> {
    Ok(None)
}
