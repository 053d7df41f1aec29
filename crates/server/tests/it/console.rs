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

/// The pending verifications page lists each address still waiting for its owner's click,
/// with when its link was mailed, and drops it once the link is followed; the address's own
/// page says when its link works until.
#[tokio::test]
async fn pending_verifications_are_listed_until_their_links_are_followed() {
    let server = Server::start();
    let admin = server.admin;
    let c = server.client();
    for name in ["waiting@example.org", "clicked@example.org", "example.org"] {
        c.create_email_identity()
            .email_identity(name)
            .send()
            .await
            .unwrap();
    }
    let with = crate::scrape::console_session(&server);
    assert_eq!(
        get(admin, "/console/verifications", &[]).status,
        303,
        "needs a session"
    );
    let page = get(admin, "/console/verifications", &[&with]);
    assert_eq!(page.status, 200, "{page:?}");
    for name in ["waiting@example.org", "clicked@example.org"] {
        assert!(page.body.contains(name), "{name}: {}", page.body);
    }
    assert!(
        !page.body.contains(">example.org<"),
        "a domain is not an address"
    );
    assert_eq!(
        page.body.matches("class=\"pending\"").count(),
        2,
        "{}",
        page.body
    );

    // Follow one link: it leaves the list.
    let mail = std::fs::read_dir(server.data_dir.join("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|t| t.contains("To: <clicked@example.org>"))
        .unwrap();
    let at = mail.find("/verify/").unwrap() + "/verify/".len();
    let link = &mail[at..at + 43];
    let head = format!(
        "POST /verify/{link} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        server.api
    );
    assert_eq!(
        crate::harness::send(server.api, head.as_bytes(), b"").status,
        200
    );
    let page = get(admin, "/console/verifications", &[&with]);
    assert!(page.body.contains("waiting@example.org"));
    assert!(!page.body.contains("clicked@example.org"), "{}", page.body);
    let own = get(
        admin,
        &format!(
            "/console/identities/{}/waiting%40example.org",
            server.account
        ),
        &[&with],
    );
    assert_eq!(own.status, 200, "{own:?}");
    assert!(own.body.contains("id=\"link\""), "{}", own.body);
    assert!(own.body.contains("works until"), "{}", own.body);
}
