//! The browser faces over HTTP: dashboard sign-in and its sessions (expiry, sign-out,
//! CSRF, roles, rate limits), what one creator's team can see of another, the customer
//! portal's one-time links and cookies, the platform owner's view, and the read APIs the
//! pages stand on (customers list, usage series).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, eventually, ok_json, spawn_app, spawn_app_with, Backend, TestApp, TestCreator,
    ADMIN_TOKEN,
};
use crate::on_both_databases;
use crate::web_client::{csrf_of, WebClient};

on_both_databases!(
    an_owner_signs_in_and_a_wrong_password_is_refused,
    sign_in_is_rate_limited_per_account,
    sessions_expire_when_idle_and_at_their_absolute_end,
    signing_out_ends_the_session_for_good,
    a_form_without_its_csrf_token_is_refused,
    a_viewer_can_look_but_not_change,
    another_creators_user_sees_nothing_of_this_creator,
    the_dashboard_changes_what_the_api_sees,
    invites_and_password_links_work_once,
    links_go_by_email_when_email_is_on,
    a_portal_link_works_once_and_its_cookie_reads_one_customer,
    revoking_a_portal_link_or_erasing_its_customer_ends_its_cookie,
    the_portal_changes_plan_and_hides_what_the_creator_hides,
    the_platform_owner_sees_every_creator_and_makes_one,
    customers_are_listed_newest_first_by_cursor,
    usage_series_come_from_the_stored_hours,
);

const PASSWORD: &str = "correct horse battery";

/// A dashboard user of `slug`, made by the platform owner.
async fn user(app: &TestApp, slug: &str, email: &str, role: &str) -> Value {
    ok_json(
        app.post(
            &format!("/v1/admin/creators/{slug}/users"),
            ADMIN_TOKEN,
            &json!({"email": email, "role": role, "password": PASSWORD}),
        )
        .await,
        201,
    )
    .await
}

/// A creator with a capped meter and tiers, its owner, and a browser signed in as it.
async fn signed_in_owner(app: &TestApp, slug: &str) -> (TestCreator, WebClient) {
    let creator = app.creator_with_cap(slug, 100, "block").await;
    let email = format!("owner@{slug}.example");
    user(app, slug, &email, "owner").await;
    let browser = WebClient::new(&app.address);
    browser.sign_in(&email, PASSWORD).await;
    (creator, browser)
}

async fn an_owner_signs_in_and_a_wrong_password_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_creator("acme").await;
    let made = user(&app, "acme", "Owner@Acme.example", "owner").await;
    assert_eq!(made["user"]["email"], "owner@acme.example");
    assert_eq!(made["invite_url"], Value::Null);

    let browser = WebClient::new(&app.address);
    let first = browser.get("/dashboard").await;
    assert_eq!(first.status, 303);
    assert_eq!(first.location.as_deref(), Some("/dashboard/sign-in"));

    let wrong = browser
        .post(
            "/dashboard/sign-in",
            &[
                ("email", "owner@acme.example"),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("the email or the password is wrong"));
    let unknown = browser
        .post(
            "/dashboard/sign-in",
            &[("email", "nobody@acme.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        unknown.status, 401,
        "an unknown email answers as a wrong password"
    );

    let sign_in = browser
        .post(
            "/dashboard/sign-in",
            &[("email", "OWNER@acme.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(sign_in.status, 303);
    let cookie = browser_cookie(&app, &browser).await;
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/dashboard"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP: no Secure flag by default ({cookie})"
    );
    let page = browser.page("/dashboard").await;
    assert!(page.contains("Overview"));
    assert!(page.contains("owner@acme.example"));

    // A new sign-in makes a new session: the cookie before it is worth nothing.
    let before = browser.cookie("staryer_dashboard");
    browser.sign_in("owner@acme.example", PASSWORD).await;
    assert_ne!(before, browser.cookie("staryer_dashboard"));
    let stale = WebClient::new(&app.address);
    stale.set_cookie("staryer_dashboard", &before.unwrap());
    assert_eq!(stale.get("/dashboard").await.status, 303);
}

/// The `Set-Cookie` a fresh sign-in answers.
async fn browser_cookie(app: &TestApp, _: &WebClient) -> String {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/dashboard/sign-in"))
        .form(&[("email", "owner@acme.example"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string()
}

async fn sign_in_is_rate_limited_per_account(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_creator("acme").await;
    user(&app, "acme", "owner@acme.example", "owner").await;
    let browser = WebClient::new(&app.address);
    for _ in 0..5 {
        let wrong = browser
            .post(
                "/dashboard/sign-in",
                &[("email", "owner@acme.example"), ("password", "guess guess")],
            )
            .await;
        assert_eq!(wrong.status, 401);
    }
    // The sixth attempt within the minute is refused, even with the right password.
    let limited = browser
        .post(
            "/dashboard/sign-in",
            &[("email", "owner@acme.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(limited.status, 429);
    assert!(limited.body.contains("too many sign-in attempts"));
}

async fn sessions_expire_when_idle_and_at_their_absolute_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, browser) = signed_in_owner(&app, "acme").await;
    // 29 minutes idle: still signed in (and the visit counts as use).
    app.clock.advance(29 * 60);
    browser.page("/dashboard/meters").await;
    app.clock.advance(29 * 60);
    browser.page("/dashboard/meters").await;
    // 31 minutes idle: signed out.
    app.clock.advance(31 * 60);
    let idle = browser.get("/dashboard/meters").await;
    assert_eq!(idle.status, 303);
    assert_eq!(idle.location.as_deref(), Some("/dashboard/sign-in"));

    // Kept busy, a session still ends 12 hours after its sign-in.
    browser.sign_in("owner@acme.example", PASSWORD).await;
    for _ in 0..(12 * 60 / 20 - 1) {
        app.clock.advance(20 * 60);
        browser.page("/dashboard/meters").await;
    }
    app.clock.advance(20 * 60 + 1);
    assert_eq!(browser.get("/dashboard/meters").await.status, 303);
}

async fn signing_out_ends_the_session_for_good(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, browser) = signed_in_owner(&app, "acme").await;
    let cookie = browser.cookie("staryer_dashboard").unwrap();
    let out = browser
        .submit("/dashboard", "/dashboard/sign-out", &[])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(
        browser.cookie("staryer_dashboard"),
        None,
        "the cookie is removed"
    );
    // The old cookie, kept by someone, is revoked on the server.
    let copy = WebClient::new(&app.address);
    copy.set_cookie("staryer_dashboard", &cookie);
    assert_eq!(copy.get("/dashboard").await.status, 303);
}

async fn a_form_without_its_csrf_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (creator, browser) = signed_in_owner(&app, "acme").await;
    let meter = [
        ("key", "tokens"),
        ("aggregation", "sum"),
        ("reset", "month"),
    ];
    let missing = browser.post("/dashboard/meters", &meter).await;
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("invalid_csrf_token"));
    let mut forged = vec![("csrf", "0123456789abcdef0123456789abcdef01234567")];
    forged.extend_from_slice(&meter);
    assert_eq!(browser.post("/dashboard/meters", &forged).await.status, 403);
    // Another session's token is not this one's.
    let other = WebClient::new(&app.address);
    other.sign_in("owner@acme.example", PASSWORD).await;
    let theirs = csrf_of(&other.page("/dashboard/meters").await);
    let mut stolen = vec![("csrf", theirs.as_str())];
    stolen.extend_from_slice(&meter);
    assert_eq!(browser.post("/dashboard/meters", &stolen).await.status, 403);
    // A form posted from another site is refused before anything else.
    let cross = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/dashboard/sign-in"))
        .header("origin", "https://evil.example")
        .form(&[("email", "owner@acme.example"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let meters = ok_json(app.get("/v1/meters", &creator.secret_key).await, 200).await;
    assert!(meters
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["key"] != "tokens"));
    // With its token the same form works.
    let made = browser
        .submit("/dashboard/meters", "/dashboard/meters", &meter)
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
}

async fn a_viewer_can_look_but_not_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let (creator, _) = signed_in_owner(&app, "acme").await;
    user(&app, "acme", "viewer@acme.example", "viewer").await;
    let viewer = WebClient::new(&app.address);
    viewer.sign_in("viewer@acme.example", PASSWORD).await;
    let page = viewer.page("/dashboard/meters").await;
    assert!(page.contains("calls"));
    assert!(
        !page.contains("New meter"),
        "a viewer is shown no change forms"
    );
    // The server refuses what the page did not show.
    let csrf = csrf_of(&page);
    for (path, fields) in [
        (
            "/dashboard/meters",
            vec![
                ("key", "tokens"),
                ("aggregation", "sum"),
                ("reset", "month"),
            ],
        ),
        ("/dashboard/meters/calls/delete", vec![]),
        ("/dashboard/customers/alice/tier", vec![("tier", "basic")]),
        ("/dashboard/keys", vec![("name", "mine")]),
        (
            "/dashboard/team",
            vec![("email", "x@acme.example"), ("role", "owner")],
        ),
    ] {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields);
        let refused = viewer.post(path, &form).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.body);
    }
    let meters = ok_json(app.get("/v1/meters", &creator.secret_key).await, 200).await;
    assert_eq!(meters.as_array().unwrap().len(), 1, "nothing changed");
    // An admin changes configuration but not the team or the keys.
    user(&app, "acme", "admin@acme.example", "admin").await;
    let admin = WebClient::new(&app.address);
    admin.sign_in("admin@acme.example", PASSWORD).await;
    let made = admin
        .submit(
            "/dashboard/meters",
            "/dashboard/meters",
            &[
                ("key", "tokens"),
                ("aggregation", "sum"),
                ("reset", "month"),
            ],
        )
        .await;
    assert_eq!(made.status, 303);
    let key = admin
        .submit("/dashboard/keys", "/dashboard/keys", &[("name", "mine")])
        .await;
    assert_eq!(key.status, 403);
}

async fn another_creators_user_sees_nothing_of_this_creator(backend: Backend) {
    let app = spawn_app(backend).await;
    let (acme, _) = signed_in_owner(&app, "acme").await;
    app.event(
        &acme,
        json!({"customer_id": "alice-of-acme", "meter": "calls", "value": 3}),
    )
    .await;
    app.assign(&acme, "alice-of-acme", "basic").await;
    let (_, globex) = signed_in_owner(&app, "globex").await;
    let list = globex.page("/dashboard/customers").await;
    assert!(!list.contains("alice-of-acme"));
    let found = globex.page("/dashboard/customers?q=alice").await;
    assert!(!found.contains("alice-of-acme"));
    let customer = globex.get("/dashboard/customers/alice-of-acme").await;
    assert_eq!(customer.status, 404, "{}", customer.body);
    let audit = globex.page("/dashboard/audit").await;
    assert!(!audit.contains("owner@acme.example"));
    // Changing acme's customer through globex's session changes nothing of acme's.
    let moved = globex
        .submit(
            "/dashboard/customers",
            "/dashboard/customers/alice-of-acme/tier",
            &[("tier", "basic")],
        )
        .await;
    assert_eq!(moved.status, 303);
    let usage = app.usage(&acme, "alice-of-acme").await;
    assert_eq!(usage["meters"][0]["used"], 3);
    let acme_list = ok_json(app.get("/v1/customers", &acme.secret_key).await, 200).await;
    assert_eq!(acme_list["customers"].as_array().unwrap().len(), 1);
}

async fn the_dashboard_changes_what_the_api_sees(backend: Backend) {
    let app = spawn_app(backend).await;
    let (creator, browser) = signed_in_owner(&app, "acme").await;
    let key = &creator.secret_key;
    let tier = browser
        .submit(
            "/dashboard/tiers",
            "/dashboard/tiers",
            &[
                ("key", "pro"),
                ("name", "Pro <b>plan</b>"),
                ("amount", "2900"),
                ("currency", "usd"),
                ("interval", "month"),
                ("features", "exports, sso"),
                ("trial_days", "0"),
                ("limit.calls", "1000"),
                ("warn_at.calls", "0.9"),
                ("on_exceed.calls", "overage"),
            ],
        )
        .await;
    assert_eq!(tier.status, 303, "{}", tier.body);
    let pro = ok_json(app.get("/v1/tiers/pro", key).await, 200).await;
    assert_eq!(pro["price"]["amount"], 2900);
    assert_eq!(pro["caps"]["calls"]["limit"], 1000);
    assert_eq!(pro["caps"]["calls"]["on_exceed"], "overage");
    assert_eq!(pro["features"], json!(["exports", "sso"]));
    let page = browser.page("/dashboard/tiers/pro").await;
    assert!(
        page.contains("Pro &lt;b&gt;plan&lt;/b&gt;"),
        "names are escaped"
    );
    // The API refuses what the form sends alike: a bad currency is the API's own error.
    let bad = browser
        .submit(
            "/dashboard/tiers/pro",
            "/dashboard/tiers/pro",
            &[
                ("name", "Pro"),
                ("amount", "10"),
                ("currency", "dollars"),
                ("interval", "month"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let edit = browser
        .submit(
            "/dashboard/tiers/pro",
            "/dashboard/tiers/pro",
            &[
                ("name", "Pro"),
                ("amount", "3900"),
                ("currency", "usd"),
                ("interval", "year"),
                ("limit.calls", "2000"),
            ],
        )
        .await;
    assert_eq!(edit.status, 303, "{}", edit.body);
    let pro = ok_json(app.get("/v1/tiers/pro", key).await, 200).await;
    assert_eq!(pro["price"]["interval"], "year");
    assert_eq!(pro["caps"]["calls"]["limit"], 2000);

    app.event(
        &creator,
        json!({"customer_id": "alice", "meter": "calls", "value": 7}),
    )
    .await;
    let page = browser.page("/dashboard/customers/alice").await;
    assert!(page.contains(">7<"), "usage shows: {page}");
    let moved = browser
        .submit(
            "/dashboard/customers/alice",
            "/dashboard/customers/alice/tier",
            &[("tier", "pro")],
        )
        .await;
    assert_eq!(moved.status, 303);
    assert_eq!(app.usage(&creator, "alice").await["tier"], "pro");
    // The audit log names the dashboard user.
    let records = ok_json(app.get("/v1/audit_logs?object_type=tier", key).await, 200).await;
    let actors: Vec<&str> = records["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["actor"].as_str())
        .collect();
    assert!(
        actors.iter().any(|a| a.starts_with("user:du_")),
        "{actors:?}"
    );
    // The overview shows the usage and the decisions.
    let overview = browser.page("/dashboard").await;
    assert!(overview.contains("allow 1 (100.0 %)"), "{overview}");
    // Erasing from the dashboard erases.
    let erased = browser
        .submit(
            "/dashboard/customers/alice",
            "/dashboard/customers/alice/erase",
            &[],
        )
        .await;
    assert_eq!(erased.status, 303, "{}", erased.body);
    assert_error(
        app.get("/v1/customers/alice/usage", key).await,
        404,
        "customer_not_found",
    )
    .await;
}

async fn invites_and_password_links_work_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, owner) = signed_in_owner(&app, "acme").await;
    let invited = owner
        .submit(
            "/dashboard/team",
            "/dashboard/team",
            &[("email", "new@acme.example"), ("role", "admin")],
        )
        .await;
    assert_eq!(invited.status, 200);
    let link = link_in(&invited.body);
    let newcomer = WebClient::new(&app.address);
    assert_eq!(newcomer.get(&link).await.status, 200);
    let short = newcomer.post(&link, &[("password", "short")]).await;
    assert_eq!(short.status, 422);
    let set = newcomer.post(&link, &[("password", PASSWORD)]).await;
    assert_eq!(set.status, 303);
    assert!(newcomer
        .page("/dashboard")
        .await
        .contains("new@acme.example"));
    let again = WebClient::new(&app.address)
        .post(&link, &[("password", PASSWORD)])
        .await;
    assert_eq!(again.status, 404, "a link works once");

    // A reset link sets a new password and ends the user's sessions.
    let team = owner.page("/dashboard/team").await;
    let id = team
        .split("/dashboard/team/")
        .filter_map(|rest| rest.split('/').next())
        .find(|id| id.starts_with("du_") && team.contains(&format!("{id}/remove")))
        .unwrap()
        .to_string();
    let reset = owner
        .submit(
            "/dashboard/team",
            &format!("/dashboard/team/{id}/reset"),
            &[],
        )
        .await;
    let link = link_in(&reset.body);
    let second = owner
        .submit(
            "/dashboard/team",
            &format!("/dashboard/team/{id}/reset"),
            &[],
        )
        .await;
    let other_link = link_in(&second.body);
    let set = WebClient::new(&app.address)
        .post(&link, &[("password", "a brand new password")])
        .await;
    assert_eq!(set.status, 303);
    let stale = WebClient::new(&app.address)
        .post(&other_link, &[("password", "yet another password")])
        .await;
    assert_eq!(stale.status, 404, "using one link ends the user's others");
    assert_eq!(
        newcomer.get("/dashboard").await.status,
        303,
        "old sessions end"
    );
    // The last owner stays one.
    let me = team
        .split("/dashboard/team/")
        .filter_map(|rest| rest.split('/').next())
        .find(|other| other.starts_with("du_") && *other != id)
        .unwrap()
        .to_string();
    let demote = owner
        .submit(
            "/dashboard/team",
            &format!("/dashboard/team/{me}/role"),
            &[("role", "viewer")],
        )
        .await;
    assert_eq!(demote.status, 409, "{}", demote.body);
}

async fn links_go_by_email_when_email_is_on(backend: Backend) {
    let resend = crate::notices::fake_resend().await;
    let app = spawn_app_with(backend, crate::notices::with_resend(&resend)).await;
    let (_, owner) = signed_in_owner(&app, "acme").await;
    let invited = owner
        .submit(
            "/dashboard/team",
            "/dashboard/team",
            &[("email", "new@acme.example"), ("role", "viewer")],
        )
        .await;
    assert!(invited.body.contains("sent to the person by email"));
    let mail_to = |to: &'static str, subject: &'static str| {
        let resend = &resend;
        async move {
            crate::notices::emails(resend)
                .await
                .into_iter()
                .find(|email| {
                    email["to"] == json!([to])
                        && email["subject"].as_str().unwrap().contains(subject)
                })
        }
    };
    let invite = eventually("the invite's email", || {
        mail_to("new@acme.example", "invited")
    })
    .await;
    let text = invite["text"].as_str().unwrap();
    let link = link_in(text);
    assert_eq!(
        link,
        link_in(&invited.body),
        "the email carries the page's link"
    );
    let newcomer = WebClient::new(&app.address);
    assert_eq!(
        newcomer.post(&link, &[("password", PASSWORD)]).await.status,
        303
    );

    // Forgot password: the page answers alike whoever asks; only a user gets an email.
    let stranger = WebClient::new(&app.address);
    for email in ["new@acme.example", "nobody@acme.example"] {
        let asked = stranger
            .post("/dashboard/forgot", &[("email", email)])
            .await;
        assert_eq!(asked.status, 200);
        assert!(asked
            .body
            .contains("If the address belongs to a dashboard user"));
    }
    let reset = eventually("the reset's email", || {
        mail_to("new@acme.example", "new Staryer")
    })
    .await;
    let link = link_in(reset["text"].as_str().unwrap());
    let set = WebClient::new(&app.address)
        .post(&link, &[("password", "a fresh password here")])
        .await;
    assert_eq!(set.status, 303);
    assert!(
        crate::notices::emails(&resend)
            .await
            .iter()
            .all(|email| email["to"] != json!(["nobody@acme.example"])),
        "no email to an address no user has"
    );
}

/// The path of the first dashboard link in a page or an email's text.
fn link_in(page: &str) -> String {
    let at = page.find("/dashboard/link/").expect("a link on the page");
    let rest = &page[at..];
    let end = rest
        .find(|c: char| c == '<' || c == '"' || c.is_whitespace())
        .unwrap_or(rest.len());
    rest[..end].to_string()
}

/// A portal session's token for `customer`.
async fn portal_token(app: &TestApp, creator: &TestCreator, customer: &str) -> String {
    portal_session(app, creator, customer).await["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A portal session for `customer`: `{id, token, …}`.
async fn portal_session(app: &TestApp, creator: &TestCreator, customer: &str) -> Value {
    ok_json(
        app.post(
            &format!("/v1/customers/{customer}/sessions"),
            &creator.secret_key,
            &json!({"scope": "portal"}),
        )
        .await,
        201,
    )
    .await
}

async fn revoking_a_portal_link_or_erasing_its_customer_ends_its_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 100, "block").await;
    app.event(
        &creator,
        json!({"customer_id": "alice", "meter": "calls", "value": 1}),
    )
    .await;
    let session = portal_session(&app, &creator, "alice").await;
    let browser = WebClient::new(&app.address);
    browser
        .enter_portal(session["token"].as_str().unwrap())
        .await;
    browser.page("/portal").await;
    let path = format!("/v1/sessions/{}", session["id"].as_str().unwrap());
    ok_json(
        app.send(Method::DELETE, &path, &creator.secret_key, None)
            .await,
        200,
    )
    .await;
    assert_eq!(
        browser.get("/portal").await.location.as_deref(),
        Some("/portal/signed-out"),
        "revoking the link's session ends the cookie it made"
    );

    let again = WebClient::new(&app.address);
    again
        .enter_portal(&portal_token(&app, &creator, "alice").await)
        .await;
    again.page("/portal").await;
    let erased = app
        .send(
            Method::DELETE,
            "/v1/customers/alice",
            &creator.secret_key,
            None,
        )
        .await;
    assert_eq!(erased.status(), 200);
    assert_eq!(
        again.get("/portal").await.location.as_deref(),
        Some("/portal/signed-out"),
        "erasing the customer ends its portal"
    );
    assert!(
        crate::helpers::rows_naming(&app.database_url, "alice")
            .await
            .is_empty(),
        "no row names the erased customer"
    );
}

async fn a_portal_link_works_once_and_its_cookie_reads_one_customer(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 100, "block").await;
    app.event(
        &creator,
        json!({"customer_id": "alice", "meter": "calls", "value": 11}),
    )
    .await;
    app.event(
        &creator,
        json!({"customer_id": "bob", "meter": "calls", "value": 29}),
    )
    .await;
    let token = portal_token(&app, &creator, "alice").await;
    let browser = WebClient::new(&app.address);
    // Fetching the link spends nothing (a mail scanner may); its button does.
    WebClient::new(&app.address)
        .page(&format!("/portal/enter?token={token}"))
        .await;
    let enter = browser.enter_portal(&token).await;
    assert_eq!(enter.status, 303);
    assert_eq!(
        enter.location.as_deref(),
        Some("/portal"),
        "the token leaves the URL"
    );
    let home = browser.page("/portal").await;
    assert!(home.contains(">11<"), "{home}");
    assert!(!home.contains(">29<"), "bob's usage is not alice's");
    // The link works once, in any browser.
    let again = WebClient::new(&app.address).enter_portal(&token).await;
    assert_eq!(again.location.as_deref(), Some("/portal/signed-out"));
    // A form from another site cannot sign a browser in to someone's portal.
    let fresh = portal_token(&app, &creator, "bob").await;
    let cross = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/portal/enter"))
        .header("origin", "https://evil.example")
        .form(&[("token", fresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    // An embed-scope token is no portal link; a dashboard cookie is no portal cookie.
    let embed = ok_json(
        app.post(
            "/v1/customers/bob/sessions",
            &creator.secret_key,
            &json!({"scope": "embed"}),
        )
        .await,
        201,
    )
    .await;
    let wrong = WebClient::new(&app.address)
        .enter_portal(embed["token"].as_str().unwrap())
        .await;
    assert_eq!(wrong.location.as_deref(), Some("/portal/signed-out"));
    let cookie = browser.cookie("staryer_portal").unwrap();
    let dashboard = WebClient::new(&app.address);
    dashboard.set_cookie("staryer_dashboard", &cookie);
    assert_eq!(dashboard.get("/dashboard").await.status, 303);
    // Alice's cookie changes alice's plan only.
    app.create_tier(&creator, "pro", json!({"calls": {"limit": 1000}}), false)
        .await;
    let moved = browser
        .submit("/portal", "/portal/plan", &[("tier", "pro")])
        .await;
    assert_eq!(moved.status, 303, "{}", moved.body);
    assert_eq!(app.usage(&creator, "alice").await["tier"], "pro");
    assert_ne!(app.usage(&creator, "bob").await["tier"], "pro");
    // Signing out ends it.
    browser.submit("/portal", "/portal/sign-out", &[]).await;
    assert_eq!(
        browser.get("/portal").await.location.as_deref(),
        Some("/portal/signed-out")
    );
}

async fn the_portal_changes_plan_and_hides_what_the_creator_hides(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 100, "block").await;
    app.create_meter(&creator, "secret_sauce", "sum", "month")
        .await;
    app.event(
        &creator,
        json!({"customer_id": "alice", "meter": "secret_sauce", "value": 5}),
    )
    .await;
    let patch = json!({"portal_hidden_meters": ["secret_sauce"]});
    let profile = ok_json(
        app.send(
            Method::PATCH,
            "/v1/creator",
            &creator.secret_key,
            Some(&patch),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(profile["portal_hidden_meters"], json!(["secret_sauce"]));
    let token = portal_token(&app, &creator, "alice").await;
    let browser = WebClient::new(&app.address);
    browser.enter_portal(&token).await;
    let home = browser.page("/portal").await;
    assert!(home.contains("calls"));
    assert!(!home.contains("secret_sauce"), "{home}");
}

async fn the_platform_owner_sees_every_creator_and_makes_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let acme = app.create_creator("acme").await;
    let _ = acme;
    let browser = WebClient::new(&app.address);
    assert_eq!(
        browser.get("/admin").await.location.as_deref(),
        Some("/admin/sign-in")
    );
    let wrong = browser
        .post("/admin/sign-in", &[("token", "not-the-token")])
        .await;
    assert_eq!(wrong.status, 401);
    let signed = browser
        .post("/admin/sign-in", &[("token", ADMIN_TOKEN)])
        .await;
    assert_eq!(signed.status, 303);
    let home = browser.page("/admin").await;
    assert!(home.contains("acme"));
    let made = browser
        .submit(
            "/admin",
            "/admin/creators",
            &[
                ("slug", "globex"),
                ("name", "Globex"),
                ("owner_email", "boss@globex.example"),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert!(made.body.contains("sk_"));
    let link = link_in(&made.body);
    let path = &link[link.find("/dashboard/link/").unwrap()..];
    let boss = WebClient::new(&app.address);
    assert_eq!(boss.post(path, &[("password", PASSWORD)]).await.status, 303);
    assert!(boss
        .page("/dashboard/team")
        .await
        .contains("boss@globex.example"));
    // A dashboard cookie opens no admin page.
    let cookie = boss.cookie("staryer_dashboard").unwrap();
    let sneaky = WebClient::new(&app.address);
    sneaky.set_cookie("staryer_admin", &cookie);
    assert_eq!(sneaky.get("/admin").await.status, 303);
}

async fn customers_are_listed_newest_first_by_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 100, "block").await;
    let key = &creator.secret_key;
    for n in 0..25 {
        let tier = if n % 2 == 0 { "basic" } else { "pro" };
        if tier == "pro" && n == 1 {
            app.create_tier(&creator, "pro", json!({}), false).await;
        }
        let body = json!({"tier": tier, "email": format!("user{n}@Example.com")});
        ok_json(
            app.send(
                Method::PUT,
                &format!("/v1/customers/c{n:02}"),
                key,
                Some(&body),
            )
            .await,
            200,
        )
        .await;
        app.clock.advance(1);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/customers?limit=10&cursor={c}"),
            None => "/v1/customers?limit=10".into(),
        };
        let page = ok_json(app.get(&path, key).await, 200).await;
        seen.extend(
            page["customers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["customer_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|n| format!("c{n:02}")).collect();
    assert_eq!(seen, expected);
    let pro = ok_json(app.get("/v1/customers?tier=pro&limit=100", key).await, 200).await;
    assert_eq!(pro["customers"].as_array().unwrap().len(), 12);
    let found = ok_json(app.get("/v1/customers?q=USER1", key).await, 200).await;
    let ids: Vec<&str> = found["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customer_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["c19", "c18", "c17", "c16", "c15", "c14", "c13", "c12", "c11", "c10", "c01"]
    );
    let wildcard = ok_json(app.get("/v1/customers?q=%25", key).await, 200).await;
    assert_eq!(
        wildcard["customers"].as_array().unwrap().len(),
        0,
        "% is taken literally"
    );
    assert_error(
        app.get("/v1/customers?cursor=garbage!", key).await,
        400,
        "invalid_cursor",
    )
    .await;
    assert_error(
        app.get("/v1/customers?limit=0", key).await,
        400,
        "invalid_query",
    )
    .await;
}

async fn usage_series_come_from_the_stored_hours(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let creator = app.creator_with_cap("acme", 1_000, "block").await;
    let key = &creator.secret_key;
    let start = crate::helpers::START;
    let hour = |n: i64| {
        chrono::DateTime::from_timestamp(start - start % 3_600 + n * 3_600, 0)
            .unwrap()
            .to_rfc3339()
    };
    app.clock.advance(40 * 3_600);
    for (customer, n, value) in [
        ("alice", 0, 2),
        ("alice", 1, 3),
        ("bob", 1, 4),
        ("bob", 30, 1),
    ] {
        let body = json!({"customer_id": customer, "meter": "calls", "value": value, "timestamp": hour(n)});
        app.event(&creator, body).await;
    }
    let values = |series: &Value| -> Vec<f64> {
        series["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["value"].as_f64().unwrap())
            .collect()
    };
    // The series read the hours the fold writes from the commit log (every second here).
    let range = format!("from={}&to={}", enc(&hour(0)), enc(&hour(3)));
    let all = eventually("the hours folded", || async {
        let series = ok_json(
            app.get(&format!("/v1/usage/series?meter=calls&{range}"), key)
                .await,
            200,
        )
        .await;
        (values(&series) == [2.0, 7.0, 0.0]).then_some(series)
    })
    .await;
    assert_eq!(all["granularity"], "hour");
    assert_eq!(all["points"][0]["start"], hour(0).replace("+00:00", "Z"));
    let alice = ok_json(
        app.get(
            &format!("/v1/usage/series?meter=calls&customer_id=alice&{range}"),
            key,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(values(&alice), [2.0, 3.0, 0.0]);
    let daily = ok_json(
        app.get(
            &format!(
                "/v1/usage/series?meter=calls&granularity=day&from={}&to={}",
                enc(&hour(0)),
                enc(&hour(48))
            ),
            key,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(values(&daily).iter().sum::<f64>(), 10.0);
    assert_error(
        app.get("/v1/usage/series?meter=nope", key).await,
        404,
        "meter_not_found",
    )
    .await;
    // A range too long keeps its last 8,784 steps and says where it starts.
    let too_long = format!(
        "/v1/usage/series?meter=calls&from=2000-01-01T00:00:00Z&to={}",
        enc(&hour(3))
    );
    let kept = ok_json(app.get(&too_long, key).await, 200).await;
    assert_eq!(kept["points"].as_array().unwrap().len(), 8_784);
    assert_eq!(values(&kept)[8_781..], [2.0, 7.0, 0.0]);
    assert_ne!(kept["from"], "2000-01-01T00:00:00Z");
    let empty = format!(
        "/v1/usage/series?meter=calls&from={0}&to={0}",
        enc(&hour(1))
    );
    let empty = ok_json(app.get(&empty, key).await, 200).await;
    assert_eq!(empty["points"], json!([]));
    assert_error(
        app.get("/v1/usage/series?meter=calls&from=yesterday", key)
            .await,
        400,
        "invalid_query",
    )
    .await;
}

fn enc(text: &str) -> String {
    text.replace(':', "%3A").replace('+', "%2B")
}
