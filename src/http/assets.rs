//! The stylesheet and scripts of the pages, embedded in the binary: `GET /assets/{name}`.

use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::HeaderValue;
use warp::http::header::CONTENT_TYPE;
use warp::reply::Response;

/// Every asset: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/app.js"),
    ),
    (
        "settings-sso.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/settings.js"),
    ),
    (
        "audit.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/audit.js"),
    ),
    (
        "people.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/people.js"),
    ),
];

/// `GET /assets/{name}`.
pub(crate) fn routes() -> BoxedFilter<(Response,)> {
    warp::path!("assets" / String)
        .and(warp::get())
        .and_then(|name: String| async move {
            let (_, content_type, body) = ASSETS
                .iter()
                .find(|(n, _, _)| *n == name)
                .ok_or_else(warp::reject::not_found)?;
            let mut response = warp::reply::Response::new((*body).into());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            Ok::<_, warp::Rejection>(response.into_response())
        })
        .boxed()
}
