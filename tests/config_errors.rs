//! Every config validation rule has a rejecting test here (house style
//! rule 10): the error must name the dotted key and the line of the
//! offending value (rule 9), the file, and a fix. Unknown keys are errors
//! naming the key, in every table.
//!
//! Each case is a whole file; line numbers count from its first line.

use portico::Config;

/// Variables the configs below may use.
fn env(name: &str) -> Option<String> {
    match name {
        "PORT" => Some("8080".into()),
        _ => None,
    }
}

/// Asserts that `toml` is rejected at `key` on `line`.
#[track_caller]
fn rejects(toml: &str, key: &str, line: usize) {
    let err = match Config::from_str_with_env(toml, "bad.toml", &env) {
        Ok(_) => panic!("accepted, but `{key}` is invalid:\n{toml}"),
        Err(e) => e,
    };
    let d = err.diagnostic().expect("a diagnostic with key and place");
    assert_eq!(d.key, key, "wrong key in: {err}");
    assert_eq!(d.line, line, "wrong line in: {err}");
    assert!(d.column >= 1, "no column in: {err}");
    assert_eq!(d.file, "bad.toml");
    assert!(!d.problem.is_empty() && !d.fix.is_empty(), "{err}");
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("bad.toml:{line}:{}: `{key}`", d.column)),
        "{shown}"
    );
    assert!(shown.contains("\n  fix: "), "{shown}");
}

/// Asserts that `toml` is accepted.
#[track_caller]
fn accepts(toml: &str) -> Config {
    Config::from_str_with_env(toml, "good.toml", &env).unwrap_or_else(|e| panic!("{e}"))
}

/// Four lines: a plain listener and no TLS. Cases append from line 5.
const BASE: &str = "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"off\"\n";

fn with(rest: &str) -> String {
    format!("{BASE}{rest}")
}

macro_rules! reject {
    ($($name:ident: $toml:expr => $key:literal at $line:literal;)*) => {
        $(
            #[test]
            fn $name() {
                rejects(&$toml, $key, $line);
            }
        )*
    };
}

// ---- [server] ----
reject! {
    server_https_not_an_address:
        "[server]\nhttps = \"localhost:443\"\n" => "server.https" at 2;
    server_http_not_an_address:
        "[server]\nhttps = \"127.0.0.1:8443\"\nhttp = \"80\"\n" => "server.http" at 3;
    server_plain_without_port:
        "[tls]\nmode = \"off\"\n[server]\nplain = \"0.0.0.0\"\n" => "server.plain" at 4;
    server_no_listener:
        "[server]\nhttps = \"\"\nplain = \"\"\n" => "server" at 2;
    server_trusted_proxy_not_an_ip:
        "[server]\nplain = \"127.0.0.1:0\"\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.local\"]\n"
        => "server.trusted_proxies[1]" at 3;
    server_health_path_relative:
        "[server]\nhealth_path = \"up\"\nplain = \"127.0.0.1:0\"\n" => "server.health_path" at 2;
    server_max_connections_zero:
        "[server]\nplain = \"127.0.0.1:0\"\nmax_connections = 0\n" => "server.max_connections" at 3;
    server_max_connections_per_ip_negative:
        "[server]\nplain = \"127.0.0.1:0\"\nmax_connections_per_ip = -1\n"
        => "server.max_connections_per_ip" at 3;
    server_max_connections_not_a_number:
        "[server]\nplain = \"127.0.0.1:0\"\nmax_connections = \"10\"\n" => "server.max_connections" at 3;
    server_handshake_timeout_not_a_duration:
        "[server]\nplain = \"127.0.0.1:0\"\nhandshake_timeout = \"soon\"\n"
        => "server.handshake_timeout" at 3;
    server_header_timeout_off:
        "[server]\nplain = \"127.0.0.1:0\"\nheader_timeout = \"off\"\n" => "server.header_timeout" at 3;
    server_grace_period_bad_unit:
        "[server]\nplain = \"127.0.0.1:0\"\ngrace_period = \"10 parsecs\"\n" => "server.grace_period" at 3;
    server_max_body_not_a_size:
        "[server]\nplain = \"127.0.0.1:0\"\nmax_body = \"lots\"\n" => "server.max_body" at 3;
    server_max_request_target_too_small:
        "[server]\nplain = \"127.0.0.1:0\"\nmax_request_target = \"10\"\n" => "server.max_request_target" at 3;
    server_max_request_target_past_the_head_limit:
        "[server]\nplain = \"127.0.0.1:0\"\nmax_request_target = \"1MiB\"\n" => "server.max_request_target" at 3;
    server_max_request_target_not_a_size:
        "[server]\nplain = \"127.0.0.1:0\"\nmax_request_target = \"long\"\n" => "server.max_request_target" at 3;
    server_http2_not_a_bool:
        "[server]\nplain = \"127.0.0.1:0\"\nhttp2 = \"yes\"\n" => "server.http2" at 3;
    env_variable_unset:
        "[server]\nplain = \"127.0.0.1:${NOPE}\"\n" => "server.plain" at 2;
    env_variable_bad_name:
        "[server]\nplain = \"127.0.0.1:${1X}\"\n" => "server.plain" at 2;
    env_variable_unterminated:
        "[server]\nplain = \"127.0.0.1:${PORT\"\n" => "server.plain" at 2;
}

// ---- [tls] ----
reject! {
    tls_off_with_https:
        "[server]\nhttps = \"127.0.0.1:8443\"\n[tls]\nmode = \"off\"\n" => "tls.mode" at 4;
    tls_unknown_mode:
        with("").replace("mode = \"off\"", "mode = \"letsencrypt\"") => "tls.mode" at 4;
    tls_cert_outside_files_mode:
        with("cert = \"fullchain.pem\"\n") => "tls.cert" at 5;
    tls_key_outside_files_mode:
        with("key = \"privkey.pem\"\n") => "tls.key" at 5;
    tls_dir_outside_dev_mode:
        with("dir = \"certs\"\n") => "tls.dir" at 5;
    tls_domains_outside_acme_mode:
        with("domains = [\"example.com\"]\n") => "tls.domains" at 5;
    tls_email_outside_acme_mode:
        with("email = \"ops@example.com\"\n") => "tls.email" at 5;
    tls_directory_outside_acme_mode:
        with("directory = \"https://acme.example/dir\"\n") => "tls.directory" at 5;
    tls_storage_outside_acme_mode:
        with("storage = \"/var/lib/portico\"\n") => "tls.storage" at 5;
    tls_eab_kid_outside_acme_mode:
        with("eab_kid = \"kid\"\n") => "tls.eab_kid" at 5;
    tls_eab_hmac_key_outside_acme_mode:
        with("eab_hmac_key = \"a2V5\"\n") => "tls.eab_hmac_key" at 5;
    tls_ca_root_outside_acme_mode:
        with("ca_root = \"root.pem\"\n") => "tls.ca_root" at 5;
    tls_challenges_outside_acme_mode:
        with("challenges = [\"http-01\"]\n") => "tls.challenges" at 5;
    tls_renew_check_outside_acme_mode:
        with("renew_check = \"10m\"\n") => "tls.renew_check" at 5;
    tls_dev_dir_empty:
        "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"dev\"\ndir = \"\"\n" => "tls.dir" at 5;
    tls_dev_host_invalid:
        "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"dev\"\nhosts = [\"myapp.test\", \"bad host\"]\n"
        => "tls.hosts[1]" at 5;
    tls_files_cert_without_key:
        "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"files\"\ncert = \"fullchain.pem\"\n"
        => "tls.key" at 5;
    tls_files_key_without_cert:
        "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"files\"\nkey = \"privkey.pem\"\n"
        => "tls.cert" at 5;
    tls_files_without_certificates:
        "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"files\"\n" => "tls.cert" at 4;
    tls_files_cert_path_empty:
        "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"files\"\ncert = \"\"\nkey = \"k.pem\"\n"
        => "tls.cert" at 5;
    tls_files_certificates_key_empty:
        "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"files\"\n[[tls.certificates]]\ncert = \"a.pem\"\nkey = \"\"\n"
        => "tls.certificates[0].key" at 7;
    tls_watch_not_a_bool:
        "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"files\"\ncert = \"a\"\nkey = \"b\"\nwatch = 1\n"
        => "tls.watch" at 7;
}

// ---- [tls] mode = "acme" ----

/// Five lines: both listeners ACME needs, `mode = "acme"` on line 5.
const ACME: &str =
    "[server]\nhttps = \"0.0.0.0:443\"\nhttp = \"0.0.0.0:80\"\n[tls]\nmode = \"acme\"\n";

fn acme(rest: &str) -> String {
    format!("{ACME}{rest}")
}

reject! {
    acme_without_domains:
        acme("") => "tls.domains" at 5;
    acme_domains_empty:
        acme("domains = []\n") => "tls.domains" at 6;
    acme_domain_wildcard:
        acme("domains = [\"*.example.com\"]\n") => "tls.domains[0]" at 6;
    acme_domain_not_public:
        acme("domains = [\"example.com\",\n  \"localhost\"]\n") => "tls.domains[1]" at 7;
    acme_domain_ip:
        acme("domains = [\"203.0.113.7\"]\n") => "tls.domains[0]" at 6;
    acme_domain_twice:
        acme("domains = [\"example.com\", \"Example.com.\"]\n") => "tls.domains[1]" at 6;
    acme_email_invalid:
        acme("domains = [\"example.com\"]\nemail = \"ops\"\n") => "tls.email" at 7;
    acme_directory_not_https:
        acme("domains = [\"example.com\"]\ndirectory = \"http://acme.example/dir\"\n")
        => "tls.directory" at 7;
    acme_directory_not_a_url:
        acme("domains = [\"example.com\"]\ndirectory = \"zerossl please\"\n") => "tls.directory" at 7;
    acme_storage_empty:
        acme("domains = [\"example.com\"]\nstorage = \" \"\n") => "tls.storage" at 7;
    acme_eab_kid_without_key:
        acme("domains = [\"example.com\"]\neab_kid = \"kid\"\n") => "tls.eab_hmac_key" at 7;
    acme_eab_key_without_kid:
        acme("domains = [\"example.com\"]\neab_hmac_key = \"a2V5\"\n") => "tls.eab_kid" at 7;
    acme_eab_key_not_base64url:
        acme("domains = [\"example.com\"]\neab_kid = \"kid\"\neab_hmac_key = \"not base64!\"\n")
        => "tls.eab_hmac_key" at 8;
    acme_ca_root_empty:
        acme("domains = [\"example.com\"]\nca_root = \"\"\n") => "tls.ca_root" at 7;
    acme_unknown_challenge:
        acme("domains = [\"example.com\"]\nchallenges = [\"dns-01\"]\n") => "tls.challenges[0]" at 7;
    acme_challenges_empty:
        acme("domains = [\"example.com\"]\nchallenges = []\n") => "tls.challenges" at 7;
    acme_renew_check_zero:
        acme("domains = [\"example.com\"]\nrenew_check = \"0\"\n") => "tls.renew_check" at 7;
    acme_renew_check_not_a_duration:
        acme("domains = [\"example.com\"]\nrenew_check = \"often\"\n") => "tls.renew_check" at 7;
    acme_without_https_listener:
        "[server]\nhttp = \"0.0.0.0:80\"\n[tls]\nmode = \"acme\"\ndomains = [\"example.com\"]\n"
        => "server.https" at 4;
    acme_http01_only_without_http_listener:
        "[server]\nhttps = \"0.0.0.0:443\"\n[tls]\nmode = \"acme\"\ndomains = [\"example.com\"]\nchallenges = [\"http-01\"]\n"
        => "tls.challenges" at 6;
}

// ---- FastCGI (php-fpm) targets and file servers ----
// Relative roots resolve against the test's working directory, the
// package root: `src` is a directory, `Cargo.toml` a file.
reject! {
    fastcgi_root_missing_dir:
        with("[upstream]\nurl = \"fastcgi://127.0.0.1:9000\"\nroot = \"/nonexistent/public\"\n") => "upstream.root" at 7;
    fastcgi_root_is_a_file:
        with("[upstream]\nurl = \"fastcgi://127.0.0.1:9000\"\nroot = \"Cargo.toml\"\n") => "upstream.root" at 7;
    fastcgi_url_without_port:
        with("[upstream]\nurl = \"fastcgi://127.0.0.1\"\nroot = \"src\"\n") => "upstream.url" at 6;
    fastcgi_unix_relative_path:
        with("[upstream]\nurl = \"fastcgi+unix://run/php.sock\"\nroot = \"src\"\n") => "upstream.url" at 6;
    fastcgi_host_header:
        with("[upstream]\nurl = \"fastcgi://127.0.0.1:9000\"\nroot = \"src\"\nhost_header = \"upstream\"\n") => "upstream.host_header" at 8;
    fastcgi_index_not_php:
        with("[upstream]\nurl = \"fastcgi://127.0.0.1:9000\"\nroot = \"src\"\nindex = \"app.py\"\n") => "upstream.index" at 8;
    fastcgi_index_with_a_path:
        with("[upstream]\nurl = \"fastcgi://127.0.0.1:9000\"\nroot = \"src\"\nindex = \"a/index.php\"\n") => "upstream.index" at 8;
    fastcgi_symlink_not_a_name:
        with("[upstream]\nurl = \"fastcgi://127.0.0.1:9000\"\nroot = \"src\"\nallow_symlinks = [\"../x\"]\n") => "upstream.allow_symlinks" at 8;
    fastcgi_zero_connections:
        with("[upstream]\nurl = \"fastcgi://127.0.0.1:9000\"\nroot = \"src\"\nmax_connections = 0\n") => "upstream.max_connections" at 8;
    fastcgi_download_dir_missing:
        with("[upstream]\nurl = \"fastcgi://127.0.0.1:9000\"\nroot = \"src\"\ndownloads = [\"/nonexistent/dl\"]\n") => "upstream.downloads" at 8;
    downloads_on_an_http_upstream:
        with("[upstream]\nurl = \"http://127.0.0.1:8000\"\ndownloads = [\"src\"]\n") => "upstream.downloads" at 7;
    route_files_with_downloads:
        with("[[routes]]\npath = \"/s/\"\nroot = \"src\"\ndownloads = [\"src\"]\n") => "routes[0].downloads" at 8;
    root_on_an_http_upstream:
        with("[upstream]\nurl = \"http://127.0.0.1:8000\"\nroot = \"src\"\n") => "upstream.root" at 7;
    route_fastcgi_without_root:
        with("[[routes]]\npath = \"/php/\"\nto = \"fastcgi://127.0.0.1:9000\"\n") => "routes[0].root" at 5;
    route_root_on_pusher:
        with("[[routes]]\npath = \"/p/\"\nto = \"pusher\"\nroot = \"src\"\n") => "routes[0].root" at 8;
    route_files_with_timeout:
        with("[[routes]]\npath = \"/s/\"\nroot = \"src\"\nresponse_timeout = \"5s\"\n") => "routes[0].response_timeout" at 8;
    route_files_missing_root:
        with("[[routes]]\npath = \"/s/\"\nroot = \"/nonexistent\"\n") => "routes[0].root" at 7;
}

#[test]
fn fastcgi_and_file_targets_are_accepted() {
    use portico::config::{FastCgiAddress, Target};
    let c = accepts(&with(
        "[upstream]\nurl = \"fastcgi+unix:///run/php/php8.2-fpm.sock\"\nroot = \"src\"\nallow_symlinks = [\"storage\"]\n\
         [[routes]]\npath = \"/admin/\"\nto = \"fastcgi://127.0.0.1:9001\"\nresponse_timeout = \"5s\"\n\
         [[routes]]\npath = \"/static/\"\nroot = \"src\"\n",
    ));
    let Target::FastCgi(up) = &c.upstream else {
        panic!("upstream is php-fpm");
    };
    assert_eq!(
        up.address,
        FastCgiAddress::Unix("/run/php/php8.2-fpm.sock".into())
    );
    assert_eq!(
        (&*up.index, up.site.allow_symlinks.clone()),
        ("index.php", vec!["storage".to_string()])
    );
    let Target::FastCgi(admin) = &c.routes[0].target else {
        panic!("route 0 is php-fpm");
    };
    // A route inherits root and index from a php-fpm [upstream].
    assert_eq!(admin.site.root, up.site.root);
    assert_eq!(admin.response_timeout, std::time::Duration::from_secs(5));
    assert!(matches!(&c.routes[1].target, Target::Files(f) if &*f.index[0] == "index.html"));
    assert!(matches!(&c.routes[2].target, Target::FastCgi(_)));
    let shown = c.effective().to_string();
    assert!(shown.contains("runs only /index.php"), "{shown}");
    assert!(shown.contains("files from src"), "{shown}");
}

// ---- [upstream] (and the same options on routes) ----
reject! {
    upstream_fastcgi_without_root:
        with("[upstream]\nurl = \"fastcgi://127.0.0.1:9000\"\n") => "upstream.root" at 6;
    upstream_unix_socket_not_built:
        with("[upstream]\nurl = \"unix:/run/php/php-fpm.sock\"\n") => "upstream.url" at 6;
    upstream_not_a_url:
        with("[upstream]\nurl = \"http://exa mple\"\n") => "upstream.url" at 6;
    upstream_no_host:
        with("[upstream]\nurl = \"http://\"\n") => "upstream.url" at 6;
    upstream_no_scheme:
        with("[upstream]\nurl = \"127.0.0.1:8000\"\n") => "upstream.url" at 6;
    upstream_unsupported_scheme:
        with("[upstream]\nurl = \"ws://127.0.0.1:8000\"\n") => "upstream.url" at 6;
    upstream_url_with_path:
        with("[upstream]\nurl = \"http://127.0.0.1:8000/api\"\n") => "upstream.url" at 6;
    upstream_url_with_query:
        with("[upstream]\nurl = \"http://127.0.0.1:8000?x=1\"\n") => "upstream.url" at 6;
    upstream_connect_timeout_off:
        with("[upstream]\nconnect_timeout = \"off\"\n") => "upstream.connect_timeout" at 6;
    upstream_response_timeout_bad:
        with("[upstream]\nresponse_timeout = \"a while\"\n") => "upstream.response_timeout" at 6;
    upstream_websocket_idle_timeout_bad:
        with("[upstream]\nwebsocket_idle_timeout = \"idle\"\n") => "upstream.websocket_idle_timeout" at 6;
    upstream_host_header_invalid:
        with("[upstream]\nhost_header = \"bad\\u0007host\"\n") => "upstream.host_header" at 6;
    upstream_max_body_bad:
        with("[upstream]\nmax_body = \"1 parsec\"\n") => "upstream.max_body" at 6;
    upstream_websocket_not_a_bool:
        with("[upstream]\nwebsocket = \"no\"\n") => "upstream.websocket" at 6;
}

// ---- [[routes]] ----
reject! {
    route_without_path:
        with("[[routes]]\npath = \"/a/\"\nto = \"pusher\"\n\n[[routes]]\nto = \"pusher\"\n")
        => "routes[1].path" at 9;
    route_path_relative:
        with("[[routes]]\npath = \"api/\"\nto = \"pusher\"\n") => "routes[0].path" at 6;
    route_host_empty:
        with("[[routes]]\npath = \"/\"\nhost = \"\"\nto = \"pusher\"\n") => "routes[0].host" at 7;
    route_host_with_scheme:
        with("[[routes]]\npath = \"/\"\nhost = \"https://example.com\"\nto = \"pusher\"\n")
        => "routes[0].host" at 7;
    route_host_with_path:
        with("[[routes]]\npath = \"/\"\nhost = \"example.com/app\"\nto = \"pusher\"\n")
        => "routes[0].host" at 7;
    route_without_to:
        with("[[routes]]\npath = \"/api/\"\n") => "routes[0].to" at 6;
    route_unknown_target:
        with("[[routes]]\npath = \"/api/\"\nto = \"nowhere\"\n") => "routes[0].to" at 7;
    route_url_with_path:
        with("[[routes]]\npath = \"/api/\"\nto = \"http://127.0.0.1:9000/api\"\n") => "routes[0].to" at 7;
    route_strip_prefix_and_rewrite:
        with("[[routes]]\npath = \"/a/\"\nto = \"http://127.0.0.1:9000\"\nstrip_prefix = true\nrewrite = \"/b/\"\n")
        => "routes[0].rewrite" at 9;
    route_rewrite_relative:
        with("[[routes]]\npath = \"/a/\"\nto = \"http://127.0.0.1:9000\"\nrewrite = \"b/\"\n")
        => "routes[0].rewrite" at 8;
    route_hub_with_connect_timeout:
        with("[[routes]]\npath = \"/app/\"\nto = \"pusher\"\nconnect_timeout = \"1s\"\n")
        => "routes[0].connect_timeout" at 8;
    route_hub_with_response_timeout:
        with("[[routes]]\npath = \"/app/\"\nto = \"supabase\"\nresponse_timeout = \"1s\"\n")
        => "routes[0].response_timeout" at 8;
    route_hub_with_idle_timeout:
        with("[[routes]]\npath = \"/app/\"\nto = \"pusher\"\nwebsocket_idle_timeout = \"1m\"\n")
        => "routes[0].websocket_idle_timeout" at 8;
    route_hub_with_host_header:
        with("[[routes]]\npath = \"/app/\"\nto = \"pusher\"\nhost_header = \"x\"\n")
        => "routes[0].host_header" at 8;
    route_hub_with_rewrite:
        with("[[routes]]\npath = \"/app/\"\nto = \"supabase\"\nrewrite = \"/x/\"\n")
        => "routes[0].rewrite" at 8;
    route_upstream_target_bad_option:
        with("[[routes]]\npath = \"/slow/\"\nto = \"upstream\"\nconnect_timeout = \"off\"\n")
        => "routes[0].connect_timeout" at 8;
    route_response_timeout_bad:
        with("[[routes]]\npath = \"/a/\"\nto = \"http://127.0.0.1:9000\"\nresponse_timeout = \"x\"\n")
        => "routes[0].response_timeout" at 8;
    route_max_body_bad:
        with("[[routes]]\npath = \"/a/\"\nto = \"http://127.0.0.1:9000\"\nmax_body = \"big\"\n")
        => "routes[0].max_body" at 8;
    route_host_header_invalid:
        with("[[routes]]\npath = \"/a/\"\nto = \"http://127.0.0.1:9000\"\nhost_header = \"a\\nb\"\n")
        => "routes[0].host_header" at 8;
    route_path_env_unset:
        with("[[routes]]\npath = \"${PREFIX}\"\nto = \"pusher\"\n") => "routes[0].path" at 6;
    routes_not_an_array:
        format!("routes = \"/\"\n{BASE}") => "routes" at 1;
}

// ---- [log] ----
reject! {
    log_unknown_format:
        with("[log]\nformat = \"xml\"\n") => "log.format" at 6;
    log_bad_level:
        with("[log]\nlevel = \"portico=loud\"\n") => "log.level" at 6;
    log_access_not_a_bool:
        with("[log]\naccess = \"yes\"\n") => "log.access" at 6;
}

// ---- [[apps]] ----
reject! {
    // A missing key points at another key of the same [[apps]] table.
    app_without_secret:
        with("[[apps]]\nid = \"1\"\nkey = \"k\"\n") => "apps[0].secret" at 6;
    app_without_id:
        with("\n[[apps]]\nkey = \"k\"\nsecret = \"s\"\n") => "apps[0].id" at 7;
    app_key_empty:
        with("[[apps]]\nid = \"1\"\nkey = \"\"\nsecret = \"s\"\n") => "apps[0].key" at 7;
    app_secret_from_unset_env:
        with("[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"${REVERB_APP_SECRET}\"\n")
        => "apps[0].secret" at 8;
    apps_duplicate_key:
        with("[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\n[[apps]]\nid = \"2\"\nkey = \"k\"\nsecret = \"t\"\n")
        => "apps[1].key" at 11;
    apps_duplicate_id:
        with("[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\n[[apps]]\nid = \"1\"\nkey = \"k2\"\nsecret = \"t\"\n")
        => "apps[1].key" at 11;
}

// ---- TOML syntax ----
reject! {
    syntax_unclosed_table:
        "[server]\nplain = \"127.0.0.1:0\"\n[tls\n" => "(syntax)" at 3;
    syntax_unquoted_string:
        "[server]\nplain = 127.0.0.1:0\n" => "(syntax)" at 2;
}

// ---- [supabase.limits] ----
/// `[supabase]` with a secret and an open `[supabase.limits]` table: the
/// limit under test is on line 8.
fn supabase_limit(line: &str) -> String {
    with(&format!(
        "[supabase]\njwt_secrets = [\"super-secret-jwt-token-with-at-least-32-characters-long\"]\n[supabase.limits]\n{line}\n"
    ))
}

reject! {
    supabase_handshake_error_delay_not_a_duration:
        supabase_limit("handshake_error_delay = \"soon\"")
        => "supabase.limits.handshake_error_delay" at 8;
    supabase_presence_events_per_channel_zero:
        supabase_limit("max_presence_events_per_channel = 0")
        => "supabase.limits.max_presence_events_per_channel" at 8;
    supabase_presence_events_window_zero:
        supabase_limit("presence_events_window = \"0s\"")
        => "supabase.limits.presence_events_window" at 8;
    supabase_presence_events_window_off:
        supabase_limit("presence_events_window = \"off\"")
        => "supabase.limits.presence_events_window" at 8;
}

// ---- [supabase] jwks ----
reject! {
    supabase_jwks_not_a_key_set:
        with("[supabase]\njwks = '{\"keys\": 3}'\n") => "supabase.jwks" at 6;
    supabase_jwks_without_signing_keys:
        with("[supabase]\njwks = '{\"keys\": [{\"kty\":\"oct\",\"k\":\"AAAA\",\"use\":\"enc\"}]}'\n")
        => "supabase.jwks" at 6;
    supabase_jwks_key_without_kid:
        with("[supabase]\njwks = '{\"keys\": [{\"kty\":\"oct\",\"k\":\"AAAA\"}]}'\n")
        => "supabase.jwks" at 6;
    supabase_jwks_duplicate_kid:
        with("[supabase]\njwks = '{\"keys\": [{\"kty\":\"oct\",\"k\":\"AAAA\",\"kid\":\"a\"},{\"kty\":\"oct\",\"k\":\"AAAB\",\"kid\":\"a\"}]}'\n")
        => "supabase.jwks" at 6;
    supabase_jwks_key_unusable:
        with("[supabase]\njwks = '{\"keys\": [{\"kty\":\"oct\",\"k\":\"AAAA\",\"kid\":\"a\",\"alg\":\"RSA-OAEP\"}]}'\n")
        => "supabase.jwks" at 6;
    supabase_jwks_file_unreadable:
        with("[supabase]\njwks_file = \"/nonexistent/portico/jwks.json\"\n") => "supabase.jwks_file" at 6;
    supabase_jwks_and_jwks_file:
        with("[supabase]\njwks = '{\"keys\": [{\"kty\":\"oct\",\"k\":\"AAAA\",\"kid\":\"a\"}]}'\njwks_file = \"/x.json\"\n")
        => "supabase.jwks_file" at 7;
}

// ---- Unknown keys, in every table ----
reject! {
    unknown_top_level_key:
        format!("listen = \":80\"\n{BASE}") => "listen" at 1;
    unknown_server_key:
        "[server]\nplain = \"127.0.0.1:0\"\nlisten = \":80\"\n" => "server.listen" at 3;
    unknown_tls_key:
        with("ca = \"x\"\n") => "tls.ca" at 5;
    unknown_tls_certificates_key:
        "[server]\nplain = \"127.0.0.1:0\"\n[tls]\nmode = \"files\"\n[[tls.certificates]]\ncert = \"a\"\nkey = \"b\"\nchain = \"c\"\n"
        => "tls.certificates[0].chain" at 8;
    unknown_upstream_key:
        with("[upstream]\nurl = \"http://127.0.0.1:8000\"\ntimeout = \"5s\"\n") => "upstream.timeout" at 7;
    unknown_route_key:
        with("[[routes]]\npath = \"/\"\nto = \"pusher\"\n[[routes]]\npath = \"/a/\"\nto = \"pusher\"\nproxy_pass = \"x\"\n")
        => "routes[1].proxy_pass" at 11;
    unknown_log_key:
        with("[log]\nfile = \"/var/log/portico.log\"\n") => "log.file" at 6;
    unknown_apps_key:
        with("[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\nname = \"x\"\n") => "apps[0].name" at 9;
    unknown_pusher_key:
        with("[pusher]\nenv_file = \".env\"\n") => "pusher.env_file" at 6;
}

#[test]
fn unknown_key_message_names_it_and_lists_the_allowed_ones() {
    let err = Config::from_str_with_env(
        "[server]\nplain = \"127.0.0.1:0\"\nlisten = \":80\"\n",
        "bad.toml",
        &env,
    )
    .expect_err("rejected");
    let d = err.diagnostic().expect("diagnostic");
    assert!(d.problem.contains("`listen`"), "{err}");
    assert!(d.fix.contains("plain"), "{err}");
}

#[test]
fn the_rules_accept_what_they_should() {
    let c = accepts(&acme(
        "domains = [\"example.com\", \"www.example.com\"]\ndirectory = \"letsencrypt-staging\"\n",
    ));
    assert!(matches!(c.tls, portico::config::Tls::Acme(_)));
    // The limits of each rule, from the accepting side.
    let c = accepts(&with(
        "[upstream]\nurl = \"https://app.internal:8443\"\nwebsocket_idle_timeout = \"off\"\nhost_header = \"upstream\"\n\
         [[routes]]\npath = \"/realtime/v1/\"\nto = \"http://127.0.0.1:4000\"\nrewrite = \"/socket/\"\nhost_header = \"realtime-dev\"\n\
         [[routes]]\npath = \"/\"\nhost = \"*.example.com:443\"\nto = \"upstream\"\nresponse_timeout = \"2m\"\n\
         [[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"${PORT}\"\n",
    ));
    assert_eq!(c.routes.len(), 3);
    assert_eq!(&*c.apps.apps[0].secret, "8080");
    let c = accepts("[server]\nplain = \":${PORT}\"\n[tls]\nmode = \"off\"\n");
    assert_eq!(c.server.plain.map(|a| a.port()), Some(8080));
    let c = accepts(
        "[server]\nplain = \"127.0.0.1:${NOPE:-9000}\"\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n[tls]\nmode = \"off\"\n",
    );
    assert_eq!(c.server.trusted_proxies.len(), 2);
    assert_eq!(c.server.plain.map(|a| a.port()), Some(9000));
}

/// A file without `[server]` (say, just `[pusher] env_file`) gets the
/// embedded default's listeners, as no file at all does; plain HTTP when TLS
/// is off. A `[server]` table that enables none is still refused (above).
#[test]
fn no_server_table_means_the_default_listeners() {
    let c = accepts("[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\n");
    let local = |p: u16| Some(std::net::SocketAddr::from(([127, 0, 0, 1], p)));
    assert_eq!((c.server.https, c.server.http), (local(8443), local(8080)));
    assert_eq!(c.server.plain, None);
    let c = accepts("[tls]\nmode = \"off\"\n");
    assert_eq!((c.server.https, c.server.http), (None, None));
    assert_eq!(c.server.plain, local(8080));
    // A `[server]` table with other keys but no listener: refused.
    let err = Config::from_str_with_env("[server]\nmax_body = \"1MiB\"\n", "bad.toml", &env)
        .expect_err("a [server] table without listeners");
    assert!(err.to_string().contains("no listener is enabled"), "{err}");
}
