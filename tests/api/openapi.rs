//! The API's description against the API: `/openapi.json` says what the daemon takes and
//! answers, its paths and methods are the routes (405 for the others), and `/docs` serves
//! the interactive reference with its assets. (`.ci/openapi-check` generates requests from
//! the document; these tests hold the points a regression would break first.)

use reqwest::header::{ALLOW, ETAG, IF_NONE_MATCH};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_error, ok_json, spawn_app, Backend, TestApp, ADMIN_TOKEN};
use crate::on_both_databases;

on_both_databases!(
    the_document_is_openapi_3_json_with_every_operation_secured_or_public,
    the_events_body_is_one_of_its_two_real_shapes_and_the_examples_are_taken,
    every_keyed_operation_documents_the_key_and_body_refusals,
    a_wrong_method_answers_405_with_allow_and_an_unknown_path_404,
    every_documented_operation_is_routed,
    the_docs_page_and_its_assets_answer_with_etags_and_304,
    a_rate_limit_past_the_documented_maximum_is_refused,
);

async fn document(app: &TestApp) -> Value {
    let response = app.client.get(app.url("/openapi.json")).send().await;
    ok_json(response.expect("request sent"), 200).await
}

/// Every operation of the document: (path, method, operation).
fn operations(document: &Value) -> Vec<(String, Method, Value)> {
    let mut all = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (name, operation) in item.as_object().expect("a path item") {
            let method = Method::from_bytes(name.to_uppercase().as_bytes()).expect("a method");
            all.push((path.clone(), method, operation.clone()));
        }
    }
    assert!(all.len() > 20, "operations: {}", all.len());
    all
}

/// `#/components/schemas/X` → the schema X.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &document["components"]["schemas"][name]
        }
        None => schema,
    }
}

fn security_scheme(operation: &Value) -> Option<&str> {
    let requirement = operation["security"].as_array()?.first()?.as_object()?;
    requirement.keys().next().map(String::as_str)
}

async fn the_document_is_openapi_3_json_with_every_operation_secured_or_public(backend: Backend) {
    let app = spawn_app(backend).await;
    let document = document(&app).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let schemes = &document["components"]["securitySchemes"];
    for (path, method, operation) in operations(&document) {
        // CORS preflights carry no credentials.
        let public = path.starts_with("/v1/webhooks/")
            || !path.starts_with("/v1/")
            || method == Method::OPTIONS;
        match security_scheme(&operation) {
            Some(scheme) => assert!(schemes[scheme].is_object(), "{method} {path}: {scheme}"),
            None => assert!(public, "{method} {path} has no security"),
        }
        let expected = if path.starts_with("/v1/admin/") {
            Some("admin_token")
        } else if public {
            None
        } else if path.starts_with("/v1/embed/") {
            Some("publishable_key")
        } else {
            Some("secret_key")
        };
        assert_eq!(security_scheme(&operation), expected, "{method} {path}");
    }
}

async fn the_events_body_is_one_of_its_two_real_shapes_and_the_examples_are_taken(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "api_calls", "count", "month")
        .await;
    app.create_meter(&creator, "tokens", "sum", "month").await;
    let document = document(&app).await;
    let body =
        &document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"];
    let shapes = resolve(&document, &body["schema"])["oneOf"]
        .as_array()
        .expect("the events body is a oneOf");
    assert_eq!(shapes.len(), 2);
    let event = resolve(&document, &shapes[0]);
    assert_eq!(event["required"], json!(["customer_id", "meter"]));
    assert_eq!(event["additionalProperties"], false);
    let batch = resolve(&document, &shapes[1]);
    assert_eq!(batch["required"], json!(["events"]));
    assert_eq!(batch["properties"]["events"]["minItems"], 1);
    assert_eq!(batch["properties"]["events"]["maxItems"], 1000);

    let examples = body["examples"].as_object().expect("examples");
    assert_eq!(examples.len(), 2);
    for example in examples.values() {
        let posted = &example["value"];
        let answer = ok_json(
            app.post("/v1/events", &creator.secret_key, posted).await,
            200,
        )
        .await;
        match posted["events"].as_array() {
            Some(events) => assert_eq!(answer["results"].as_array().unwrap().len(), events.len()),
            None => assert_eq!(answer["customer_id"], posted["customer_id"]),
        }
    }
    let answer = &document["paths"]["/v1/events"]["post"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    let answers = resolve(&document, answer)["oneOf"]
        .as_array()
        .expect("the events answer is a oneOf");
    let names: Vec<&str> = answers.iter().filter_map(|a| a["$ref"].as_str()).collect();
    assert_eq!(
        names,
        [
            "#/components/schemas/EventResult",
            "#/components/schemas/BatchResults"
        ]
    );

    // The shapes the document once described are refused.
    let tagged = json!({"Single": {"customer_id": "alice", "meter": "api_calls"}});
    assert_error(
        app.post("/v1/events", &creator.secret_key, &tagged).await,
        422,
        "unknown_field",
    )
    .await;
}

async fn every_keyed_operation_documents_the_key_and_body_refusals(backend: Backend) {
    let app = spawn_app(backend).await;
    let document = document(&app).await;
    for (path, method, operation) in operations(&document) {
        let answers = operation["responses"].as_object().unwrap();
        let has = |status: &str| answers.contains_key(status);
        if let Some(scheme) = security_scheme(&operation) {
            for status in ["401", "403", "503"] {
                assert!(has(status), "{method} {path} lacks {status}");
            }
            assert_eq!(has("429"), scheme == "secret_key", "{method} {path}: 429");
        }
        let with_query = operation["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
        if operation.get("requestBody").is_some() || with_query {
            assert!(has("400"), "{method} {path} lacks 400");
        }
        if operation.get("requestBody").is_some() {
            assert!(has("413"), "{method} {path} lacks 413");
        }
        for (status, answer) in answers {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &answer["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
            if status == "429" || status == "503" {
                assert!(
                    answer["headers"]["Retry-After"].is_object(),
                    "{method} {path}"
                );
            }
        }
    }
    // A keyed operation really answers its documented 400 and 401.
    let no_key = app
        .client
        .post(app.url("/v1/meters"))
        .body("{")
        .send()
        .await;
    assert_error(no_key.unwrap(), 401, "missing_key").await;
    let creator = app.create_creator("acme").await;
    assert_error(
        app.post_raw("/v1/meters", &creator.secret_key, "{").await,
        400,
        "malformed_json",
    )
    .await;
}

async fn a_wrong_method_answers_405_with_allow_and_an_unknown_path_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("acme").await;
    for (method, path, allow) in [
        (Method::DELETE, "/v1/meters", "GET, POST"),
        (Method::PUT, "/v1/customers/alice/usage", "GET"),
        (Method::GET, "/v1/events", "POST"),
        (Method::POST, "/healthz", "GET"),
    ] {
        let response = app
            .send(method.clone(), path, &creator.secret_key, None)
            .await;
        assert_eq!(
            response.headers()[ALLOW].to_str().unwrap(),
            allow,
            "{method} {path}"
        );
        assert_error(response, 405, "method_not_allowed").await;
    }
    for path in ["/v1/nothing", "/v1/meters/a/b", "/v1/meters/"] {
        let response = app.get(path, &creator.secret_key).await;
        assert!(response.headers().get(ALLOW).is_none(), "{path}");
        assert_error(response, 404, "route_not_found").await;
    }
}

async fn every_documented_operation_is_routed(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("acme").await;
    let document = document(&app).await;
    for (path, method, operation) in operations(&document) {
        let key = match security_scheme(&operation) {
            Some("admin_token") => ADMIN_TOKEN,
            _ => creator.secret_key.as_str(),
        };
        let concrete = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "x"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let response = app.send(method.clone(), &concrete, key, None).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert_ne!(body["error"]["code"], "route_not_found", "{method} {path}");
    }
}

async fn the_docs_page_and_its_assets_answer_with_etags_and_304(backend: Backend) {
    let app = spawn_app(backend).await;
    let page = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page_etag = page.headers()[ETAG].clone();
    let html = page.text().await.unwrap();
    assert!(html.contains("\"/openapi.json\""), "{html}");
    assert!(
        !html.contains("https://"),
        "the page loads nothing from elsewhere: {html}"
    );

    // The assets the page links to, and the page itself: 200 with an ETag, then 304.
    let mut links: Vec<String> = html
        .split(['"', '\''])
        .filter(|part| part.starts_with("/docs/"))
        .map(str::to_string)
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    links.push("/docs".into());
    for link in links {
        let first = app.client.get(app.url(&link)).send().await.unwrap();
        assert_eq!(first.status(), 200, "{link}");
        let etag = first.headers()[ETAG].clone();
        assert!(!first.bytes().await.unwrap().is_empty(), "{link}");
        let again = app
            .client
            .get(app.url(&link))
            .header(IF_NONE_MATCH, etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{link}");
        assert_eq!(again.headers()[ETAG], etag, "{link}");
        assert!(again.bytes().await.unwrap().is_empty(), "{link}");
    }
    let stale = app
        .client
        .get(app.url("/docs"))
        .header(IF_NONE_MATCH, "\"something else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.headers()[ETAG], page_etag);
    let missing = app.client.get(app.url("/docs/nothing.js")).send().await;
    assert_error(missing.unwrap(), 404, "asset_not_found").await;
}

async fn a_rate_limit_past_the_documented_maximum_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let document = document(&app).await;
    let per_second = &document["components"]["schemas"]["RateLimit"]["properties"]["per_second"];
    assert_eq!(per_second["minimum"], 1);
    assert_eq!(per_second["maximum"], 1_000_000);
    for rate_limit in [
        json!({"per_second": 2_147_483_648_u64}),
        json!({"per_second": 1_000_001}),
        json!({"per_second": 0}),
        json!({"per_second": 10, "burst": 0}),
    ] {
        assert_error(
            app.post(
                "/v1/admin/creators",
                ADMIN_TOKEN,
                &json!({"slug": "acme", "rate_limit": rate_limit}),
            )
            .await,
            422,
            "invalid_rate_limit",
        )
        .await;
    }
    let created = ok_json(
        app.post(
            "/v1/admin/creators",
            ADMIN_TOKEN,
            &json!({"slug": "acme", "rate_limit": {"per_second": 1_000_000, "burst": 5.0}}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        created["rate_limit"],
        json!({"per_second": 1_000_000, "burst": 5})
    );
    let patched = app
        .send(
            Method::PATCH,
            "/v1/admin/creators/acme",
            ADMIN_TOKEN,
            Some(&json!({"rate_limit": {"per_second": 2_147_483_648_u64}})),
        )
        .await;
    assert_error(patched, 422, "invalid_rate_limit").await;
}
