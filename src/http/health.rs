//! Liveness, readiness and Prometheus metrics.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::header::CONTENT_TYPE;
use warp::reply::Response;

use crate::oidc::ProviderState;
use crate::state::AppState;

/// `GET /healthz`, `GET /readyz`, `GET /metrics`.
pub(crate) fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})).into_response());
    let with_state = super::with_state(state);
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(with_state.clone())
        .then(|state: AppState| async move {
            // The process answers /healthz; it is ready when its store is (PostgreSQL reachable).
            if !state.store.ready().await {
                let body = serde_json::json!({
                    "status": "unavailable",
                    "reason": "the store (database) is unreachable",
                });
                return warp::reply::with_status(
                    warp::reply::json(&body),
                    warp::http::StatusCode::SERVICE_UNAVAILABLE,
                )
                .into_response();
            }
            let live = state.reloader.live();
            warp::reply::json(&serde_json::json!({
                "status": "ready",
                "config_generation": live.generation,
            }))
            .into_response()
        });
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_state)
        .map(|state: AppState| {
            warp::reply::with_header(
                render_metrics(&state),
                CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .into_response()
        });
    healthz.or(readyz).unify().or(metrics).unify().boxed()
}

/// The Prometheus text exposition of the daemon's metrics.
fn render_metrics(state: &AppState) -> String {
    let reloader = &state.reloader;
    let m = reloader.metrics();
    let status = reloader.status();
    let live = reloader.live();
    let mut out = String::with_capacity(1024);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    metric(
        "coderflow_config_reloads_total",
        "counter",
        "Reloads of oidc.json that changed something, by result (success: applied; failure: rejected, last good kept).",
        &[
            (
                "{result=\"success\"}",
                m.success_total.load(Ordering::Relaxed) as f64,
            ),
            (
                "{result=\"failure\"}",
                m.failure_total.load(Ordering::Relaxed) as f64,
            ),
        ],
    );
    metric(
        "coderflow_config_last_reload_successful",
        "gauge",
        "1 when the last reload of oidc.json was applied, 0 while the file on disk is rejected.",
        &[("", if status.ok { 1.0 } else { 0.0 })],
    );
    metric(
        "coderflow_config_last_reload_timestamp_seconds",
        "gauge",
        "Unix time of the last reload of oidc.json, applied or rejected (0: none since start).",
        &[(
            "",
            m.last_reload_unix_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        )],
    );
    metric(
        "coderflow_config_generation",
        "gauge",
        "Generation of the live configuration (1 at start-up, +1 for each applied reload).",
        &[("", live.generation as f64)],
    );
    metric(
        "coderflow_sso_enabled",
        "gauge",
        "1 when the live configuration enables SSO.",
        &[("", if live.sso_enabled() { 1.0 } else { 0.0 })],
    );
    let provider = state.provider.status().state;
    metric(
        "coderflow_sso_provider_state",
        "gauge",
        "1 for the identity provider's current state (disabled, discovering, ready, unreachable).",
        &[
            (
                "{state=\"disabled\"}",
                f64::from(u8::from(provider == ProviderState::Disabled)),
            ),
            (
                "{state=\"discovering\"}",
                f64::from(u8::from(provider == ProviderState::Discovering)),
            ),
            (
                "{state=\"ready\"}",
                f64::from(u8::from(provider == ProviderState::Ready)),
            ),
            (
                "{state=\"unreachable\"}",
                f64::from(u8::from(provider == ProviderState::Unreachable)),
            ),
        ],
    );
    metric(
        "coderflow_setup_oidc_tracked_by_git",
        "gauge",
        "1 when oidc.json is tracked by git (its secret is in the repository): run `git rm --cached oidc.json`.",
        &[("", if status.git.tracked { 1.0 } else { 0.0 })],
    );
    out
}
