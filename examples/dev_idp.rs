//! A local OpenID Connect provider for trying SSO by hand, without a real identity provider.
//! It is the provider the integration tests use (`tests/it/support/idp.rs`); its sign-in page
//! lets you type any email and name.
//!
//! `cargo run --release --example dev_idp -- [--port 9000] [--client-id coderflow-dev] [--client-secret dev-secret]`

// Test and tool code: a failure panics with its cause, and output is the point.
#![allow(
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "../tests/it/support/idp.rs"]
mod idp;

use clap::Parser;

/// Command line of the development provider.
#[derive(Parser)]
#[command(about = "A local OpenID Connect provider for trying CoderFlow SSO by hand")]
struct Args {
    /// Port on 127.0.0.1 (the issuer is http://127.0.0.1:<port>).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// The client id the provider accepts.
    #[arg(long, default_value = "coderflow-dev")]
    client_id: String,
    /// The client secret the provider accepts.
    #[arg(long, default_value = "dev-secret")]
    client_secret: String,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let idp = idp::TestIdp::start_on(args.port, &args.client_id, &args.client_secret).await;
    idp.log_requests(true);
    let mut oidc = idp.oidc_config();
    oidc["$schema"] = "https://coderflow.dev/schemas/oidc.schema.json".into();
    oidc["display_name"] = "Sign in with the dev IdP".into();
    println!("Development OpenID provider on {}", idp.issuer());
    println!("\nPut this into setup-repo/oidc.json:\n");
    println!("{}", serde_json::to_string_pretty(&oidc).expect("JSON"));
    println!(
        "\nThen open the server's /login page and click the SSO button: this provider shows a\n\
         form where you type any email and name (same email = same identity). It accepts any\n\
         redirect URI. Test keys only: never use this for anything real. Ctrl-C stops it."
    );
    tokio::signal::ctrl_c()
        .await
        .expect("cannot wait for Ctrl-C");
    idp.stop().await;
}
