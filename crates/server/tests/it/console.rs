//! The admin listener's doors: the probes answer without a session; every console page
//! without one is sent to sign-in (303), every console form without one is refused 401 and
//! with a wrong or missing CSRF token 403, and changes nothing; a wrong token does not sign in;
//! the right one does, with a cookie scripts cannot read.

use crate::harness::Server;
use crate::scrape::{get, post_form};

#[test]
fn the_console_needs_a_session_and_its_forms_a_csrf_token() {
    let server = Server::start();
    let admin = server.admin;
    let live = get(admin, "/health/live", &[]);
    assert_eq!(live.status, 200, "{live:?}");
    let ready = get(admin, "/health/ready", &[]);
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(ready.json()["status"], "ready");

    for path in [
        "/console",
        "/console/",
        "/console/identities",
        "/console/identities?status=PENDING",
        "/console/identities/123456789012/example.com",
        "/console/accounts",
    ] {
        let r = get(admin, path, &[]);
        assert_eq!(r.status, 303, "{path}: {r:?}");
        let to = r.header("location").unwrap();
        assert!(
            to == "/console/login" || to == "/console/identities",
            "{path}: {to}"
        );
    }
    // With a made-up session too.
    let r = get(
        admin,
        "/console/accounts",
        &["Cookie: sesame_console=forged"],
    );
    assert_eq!(r.status, 303);

    let token = std::fs::read_to_string(server.data_dir.join("admin-token")).unwrap();
    let token = token.trim();
    let wrong = post_form(admin, "/console/login", &[], "token=not-the-token");
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert!(wrong.header("set-cookie").is_none());

    // A form post without a session: 401, whatever it carries.
    let check = "/console/identities/123456789012/example.com/check";
    for headers in [&[][..], &["Cookie: sesame_console=forged"][..]] {
        let r = post_form(admin, check, headers, "csrf=00");
        assert_eq!(r.status, 401, "{r:?}");
        let r = post_form(admin, "/console/logout", headers, "");
        assert_eq!(r.status, 401, "{r:?}");
    }

    let signed_in = post_form(admin, "/console/login", &[], &format!("token={token}"));
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    let cookie = signed_in.header("set-cookie").unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_owned();
    let with = format!("Cookie: {session}");
    let page = get(admin, "/console/identities", &[&with]);
    assert_eq!(page.status, 200, "{page:?}");
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!page.body.contains(token), "the token is never echoed");

    // Accounts: key ids, never a secret.
    let accounts = get(admin, "/console/accounts", &[&with]);
    assert_eq!(accounts.status, 200);
    assert!(
        accounts.body.contains(crate::harness::KEY_ID),
        "{}",
        accounts.body
    );
    assert!(!accounts.body.contains(crate::harness::SECRET));
    assert!(accounts.body.contains(&server.account));

    // With the session but no or a wrong CSRF token: 403.
    for form in ["", "csrf=", "csrf=0000", "other=1"] {
        let r = post_form(admin, "/console/logout", &[&with], form);
        assert_eq!(r.status, 403, "{form:?}: {r:?}");
    }
    // Still signed in: the refused logout did nothing.
    assert_eq!(get(admin, "/console/accounts", &[&with]).status, 200);
    // The page's token signs the session out.
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let out = post_form(admin, "/console/logout", &[&with], &format!("csrf={csrf}"));
    assert_eq!(out.status, 303, "{out:?}");
    assert_eq!(get(admin, "/console/accounts", &[&with]).status, 303);
}
