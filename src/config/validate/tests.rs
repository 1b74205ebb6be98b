use super::*;
use crate::config::parse;

const GOOD: &str = include_str!("../../../config/splitgate.toml");

fn issues(text: &str) -> Vec<Issue> {
    validate(&parse(text).unwrap()).unwrap_err()
}

fn paths(text: &str) -> Vec<String> {
    issues(text).into_iter().map(|i| i.path).collect()
}

#[test]
fn shipped_default_is_valid() {
    let plan = validate(&parse(GOOD).unwrap()).unwrap();
    assert_eq!(plan.variants.len(), 2);
    assert_eq!(plan.champion, 0);
    assert_eq!(plan.variants[1].buckets, 1_000);
    assert_eq!(plan.keys.len(), 1);
    assert!(plan.throttle.is_some());
    assert_eq!(plan.layout.counts(2), vec![9_000, 1_000]);
}

#[test]
fn unknown_fields_are_errors() {
    let text = GOOD.replace("max_body_bytes", "max_body_byte");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("max_body_byte"), "{err}");
    let text = GOOD.replace("champion = true", "champion = true\nwieght = 3");
    assert!(parse(&text).is_err());
}

#[test]
fn reports_every_problem_with_its_path() {
    let text = GOOD
        .replace("weight = 90", "weight = 80.123")
        .replace("model = \"rec-v2-3\"", "model = \"nope\"")
        .replace("5b1f89fd", "zz1f89fd")
        .replace("127.0.0.1:9901", "not-an-address")
        .replace("burst = 5000", "burst = 0");
    let p = paths(&text);
    for want in [
        "split.variants[0].weight",
        "split.variants[1].model",
        "auth.keys[0].sha256",
        "server.admin_listen",
        "throttle.burst",
    ] {
        assert!(p.iter().any(|x| x == want), "missing {want} in {p:?}");
    }
}

#[test]
fn weights_must_sum_to_100() {
    let text = GOOD.replace("weight = 10", "weight = 20");
    let i = issues(&text);
    assert_eq!(i.len(), 1);
    assert_eq!(i[0].path, "split.variants");
    assert!(i[0].message.contains("110"), "{}", i[0].message);
}

#[test]
fn exactly_one_champion() {
    assert!(paths(&GOOD.replace("champion = true", "")).contains(&"split.variants".to_owned()));
    let two = GOOD.replace("weight = 10", "weight = 10\nchampion = true");
    assert!(issues(&two).iter().any(|i| i.message.contains("2 have")));
}

#[test]
fn duplicate_names_and_bad_urls() {
    let text = GOOD
        .replace("name = \"challenger\"", "name = \"champion\"")
        .replace("backend = \"builtin\"\n\n[split]", "backend = \"http\"\nurl = \"ftp://x\"\n\n[split]");
    let p = paths(&text);
    assert!(p.contains(&"split.variants[1].name".to_owned()), "{p:?}");
    assert!(p.contains(&"models.rec-v2-3.url".to_owned()), "{p:?}");
}

#[test]
fn http_model_needs_url_and_builtin_refuses_one() {
    let text = GOOD.replacen("backend = \"builtin\"", "backend = \"http\"", 1);
    assert_eq!(paths(&text), vec!["models.rec-v2-2.url".to_owned()]);
    let text = GOOD.replacen("backend = \"builtin\"", "backend = \"builtin\"\nurl = \"http://a/\"", 1);
    assert_eq!(paths(&text), vec!["models.rec-v2-2.url".to_owned()]);
}

#[test]
fn slot_capacity_is_enforced() {
    let text = format!("{GOOD}\n[[split.variants]]\nname = \"third\"\nmodel = \"rec-v2-3\"\nweight = 0\n")
        .replace("weight = 90", "weight = 30")
        .replace("weight = 10", "weight = 70");
    let i = issues(&text);
    assert_eq!(i[0].path, "split.variants[1].weight", "{i:?}");
    assert!(i[0].message.contains("slot of 50"), "{}", i[0].message);
}

#[test]
fn shadow_validation() {
    let text = format!("{GOOD}\n[[shadow]]\nmodel = \"ghost\"\nsample_percent = 101\nk = 0\n");
    let p = paths(&text);
    for want in ["shadow[0].model", "shadow[0].sample_percent", "shadow[0].k"] {
        assert!(p.contains(&want.to_owned()), "{p:?}");
    }
    let ok = format!("{GOOD}\n[[shadow]]\nmodel = \"rec-v2-3\"\nsample_percent = 12.5\n");
    let plan = validate(&parse(&ok).unwrap()).unwrap();
    assert_eq!(plan.shadows[0].sample_buckets, 1_250);
    assert_eq!(plan.shadows[0].salt, "rec-2026-11:shadow");
}

#[test]
fn no_keys_is_an_error() {
    let start = GOOD.find("[[auth.keys]]").unwrap();
    let end = GOOD.find("[throttle]").unwrap();
    let text = format!("{}{}", &GOOD[..start], &GOOD[end..]);
    assert_eq!(paths(&text), vec!["auth.keys".to_owned()]);
}

#[test]
fn shipped_aws_example_is_valid_once_combined() {
    let file = parse(include_str!("../../../config/aws.toml")).unwrap();
    let alone = validate(&file).unwrap_err();
    assert_eq!(alone.iter().map(|i| i.path.as_str()).collect::<Vec<_>>(), ["auth.keys", "split", "split.variants"]);
    let combined = crate::reload::combine(&file, 7, include_str!("../../../config/aws-document.toml")).unwrap();
    let plan = validate(&combined).unwrap();
    assert_eq!(plan.version, Some(7));
    assert_eq!(plan.models[0].sagemaker.as_ref().unwrap().endpoint, "rec-prod");
    assert!(plan.cloudwatch.is_some() && plan.source.is_some());
}

#[test]
fn sagemaker_fields_are_checked() {
    let text = GOOD.replacen("backend = \"builtin\"", "backend = \"sagemaker\"\nurl = \"http://x/\"", 1);
    let p = paths(&text);
    assert!(
        p.contains(&"models.rec-v2-2.url".to_owned()) && p.contains(&"models.rec-v2-2.endpoint".to_owned()),
        "{p:?}"
    );
    let text = GOOD.replacen("backend = \"builtin\"", "backend = \"builtin\"\nendpoint = \"e\"", 1);
    assert_eq!(paths(&text), vec!["models.rec-v2-2.endpoint".to_owned()]);
    let text = format!("{GOOD}\n[source]\nkind = \"dynamodb\"\npoll_interval_ms = 5\n");
    let p = paths(&text);
    for want in ["source.table", "source.key", "source.poll_interval_ms"] {
        assert!(p.contains(&want.to_owned()), "{p:?}");
    }
}

#[test]
fn idle_timeout_defaults_above_load_balancer_idle_timeouts_and_is_bounded() {
    let plan = validate(&parse(&GOOD.replace("idle_timeout_ms = 75000", "")).unwrap()).unwrap();
    // ALB's default idle timeout is 60 s: ours must be longer, or the ALB reuses closed connections.
    assert_eq!(plan.server.idle_timeout_ms, 75_000);
    for bad in ["999", "3600001"] {
        let text = GOOD.replace("idle_timeout_ms = 75000", &format!("idle_timeout_ms = {bad}"));
        assert_eq!(paths(&text), vec!["server.idle_timeout_ms"], "{bad}");
    }
}

#[test]
fn max_config_bytes_defaults_to_one_mib_and_is_at_least_one_kib() {
    let plan = validate(&parse(GOOD).unwrap()).unwrap();
    assert_eq!(plan.server.max_config_bytes, 1_048_576);
    let with = |v: &str| GOOD.replacen("[server]", &format!("[server]\nmax_config_bytes = {v}"), 1);
    assert_eq!(paths(&with("1023")), vec!["server.max_config_bytes"]);
    assert_eq!(paths(&with("67108865")), vec!["server.max_config_bytes"]);
    assert_eq!(validate(&parse(&with("1024")).unwrap()).unwrap().server.max_config_bytes, 1024);
}

#[test]
fn issues_name_the_field_but_never_echo_secrets() {
    let secret = "zz-secret-value-zz";
    let text = GOOD.replace("5b1f89fd1eaf4f5a25821da4a9d3f8a6881fdd0d8ec50232ed0bf787f4f9a0ad", secret).replacen(
        "[server]",
        &format!("[[admin.tokens]]\nname = \"ops\"\nsha256 = \"{secret}\"\n\n[server]"),
        1,
    );
    let found = issues(&text);
    let paths: Vec<_> = found.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(paths, ["auth.keys[0].sha256", "admin.tokens[0].sha256"]);
    assert!(!Issue::render(&found).contains(secret), "{}", Issue::render(&found));
}
