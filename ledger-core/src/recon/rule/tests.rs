use rust_decimal::Decimal;
use serde_json::json;

use super::*;

/// The rule a JSON body checks to.
fn check(body: serde_json::Value) -> Result<Rule, InvalidRule> {
    let spec: RuleSpec = serde_json::from_value(body).expect("the body has a rule's shape");
    Rule::check(&spec)
}

fn refused(body: serde_json::Value) -> InvalidRule {
    check(body).expect_err("the rule is refused")
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).unwrap()
}

fn criterion(field: Field, operator: Operator, tolerance: Option<Tolerance>) -> Criterion {
    Criterion { field, operator, tolerance }
}

#[test]
fn a_one_to_one_rule_is_checked_into_its_typed_form() {
    let rule = check(json!({"strategy": "one_to_one", "criteria": [
        {"field": "amount", "operator": "within", "tolerance": "0.01"},
        {"field": "date", "operator": "within", "tolerance": 86400},
        {"field": "date", "operator": "within", "tolerance": "60"},
        {"field": "reference", "operator": "contains"},
        {"field": "metadata.order_id", "operator": "prefix"},
        {"field": "currency", "operator": "equals"},
        {"field": "metadata.A-z.0_9", "operator": "equals", "tolerance": null},
    ]}))
    .unwrap();
    assert_eq!(rule.strategy(), Strategy::OneToOne);
    assert_eq!(rule.group_by(), None);
    assert_eq!(
        rule.criteria(),
        [
            criterion(Field::Amount, Operator::Within, Some(Tolerance::Amount(dec("0.01")))),
            criterion(Field::Date, Operator::Within, Some(Tolerance::Seconds(86_400))),
            criterion(Field::Date, Operator::Within, Some(Tolerance::Seconds(60))),
            criterion(Field::Reference, Operator::Contains, None),
            criterion(Field::Metadata("order_id".into()), Operator::Prefix, None),
            criterion(Field::Currency, Operator::Equals, None),
            criterion(Field::Metadata("A-z.0_9".into()), Operator::Equals, None),
        ]
    );
}

#[test]
fn group_rules_take_their_key() {
    for (strategy, typed) in [("one_to_many", Strategy::OneToMany), ("many_to_one", Strategy::ManyToOne)] {
        for (group_by, field) in [
            ("reference", Field::Reference),
            ("currency", Field::Currency),
            ("date", Field::Date),
            ("metadata.batch", Field::Metadata("batch".into())),
        ] {
            let rule = check(json!({"strategy": strategy, "group_by": group_by,
                "criteria": [{"field": "amount", "operator": "equals"}]}))
            .unwrap();
            assert_eq!((rule.strategy(), rule.group_by()), (typed, Some(&field)));
        }
    }
    let within = json!({"strategy": "one_to_many", "group_by": "reference",
        "criteria": [{"field": "currency", "operator": "equals"}, {"field": "amount", "operator": "within", "tolerance": "1"}]});
    assert!(check(within).is_ok());
}

#[test]
fn the_canonical_form_round_trips() {
    let body = json!({"strategy": "many_to_one", "group_by": "metadata.batch", "criteria": [
        {"field": "amount", "operator": "within", "tolerance": "0.010"},
        {"field": "date", "operator": "within", "tolerance": 3600},
        {"field": "reference", "operator": "prefix"},
    ]});
    let spec: RuleSpec = serde_json::from_value(body.clone()).unwrap();
    let rule = Rule::check(&spec).unwrap();
    assert_eq!(rule.spec(), spec);
    assert_eq!(serde_json::to_value(rule.spec()).unwrap(), body);
    assert_eq!(Rule::check(&rule.spec()), Ok(rule));

    // A date tolerance given as digits is written back as an integer; absent keys stay absent.
    let digits = check(json!({"strategy": "one_to_one", "criteria": [
        {"field": "date", "operator": "within", "tolerance": "0"}, {"field": "metadata.k", "operator": "equals"}]}))
    .unwrap();
    assert_eq!(
        serde_json::to_value(digits.spec()).unwrap(),
        json!({"strategy": "one_to_one", "criteria": [
            {"field": "date", "operator": "within", "tolerance": 0}, {"field": "metadata.k", "operator": "equals"}]})
    );
}

#[test]
fn unknown_keys_are_refused_by_the_shape() {
    let extra_rule = json!({"strategy": "one_to_one", "criteria": [], "name": "x"});
    assert!(serde_json::from_value::<RuleSpec>(extra_rule).is_err());
    let extra_criterion =
        json!({"strategy": "one_to_one", "criteria": [{"field": "amount", "operator": "equals", "x": 1}]});
    assert!(serde_json::from_value::<RuleSpec>(extra_criterion).is_err());
}

#[test]
fn unknown_values_are_named() {
    let amount = json!([{"field": "amount", "operator": "equals"}]);
    assert_eq!(
        refused(json!({"strategy": "one_to_few", "criteria": amount})),
        InvalidRule::UnknownStrategy("one_to_few".into())
    );
    let message = refused(json!({"strategy": "One_to_one", "criteria": amount})).to_string();
    assert!(message.contains("\"One_to_one\""), "{message}");

    for field in [
        "amounts",
        "metadata.",
        "metadata",
        "Metadata.k",
        "metadata.a b",
        "metadata.é",
        &format!("metadata.{}", "k".repeat(65)),
    ] {
        let body = json!({"strategy": "one_to_one", "criteria": [amount[0], {"field": field, "operator": "equals"}]});
        assert_eq!(refused(body), InvalidRule::UnknownField { index: 1, field: field.into() }, "{field}");
    }
    assert!(
        check(json!({"strategy": "one_to_one", "criteria": [
        {"field": format!("metadata.{}", "k".repeat(64)), "operator": "equals"}]}))
        .is_ok()
    );

    let body = json!({"strategy": "one_to_one", "criteria": [{"field": "amount", "operator": "approximately"}]});
    let error = refused(body);
    assert_eq!(error, InvalidRule::UnknownOperator { index: 0, operator: "approximately".into() });
    assert!(error.to_string().starts_with("criteria[0]: unknown operator \"approximately\""), "{error}");
}

#[test]
fn the_number_of_criteria_is_bounded() {
    assert_eq!(refused(json!({"strategy": "one_to_one", "criteria": []})), InvalidRule::NoCriteria);
    let criteria = |n: usize| vec![json!({"field": "reference", "operator": "equals"}); n];
    assert!(check(json!({"strategy": "one_to_one", "criteria": criteria(16)})).is_ok());
    assert_eq!(
        refused(json!({"strategy": "one_to_one", "criteria": criteria(17)})),
        InvalidRule::TooManyCriteria { count: 17 }
    );
}

#[test]
fn each_operator_applies_to_its_fields() {
    let tolerance = |field: &str| match field {
        "amount" => json!("1"),
        _ => json!(1),
    };
    let fields = ["amount", "date", "reference", "currency", "metadata.k"];
    for operator in ["equals", "within", "contains", "prefix"] {
        for field in fields {
            let mut criterion = json!({"field": field, "operator": operator});
            if operator == "within" {
                criterion["tolerance"] = tolerance(field);
            }
            let applies = match operator {
                "equals" => true,
                "within" => ["amount", "date"].contains(&field),
                _ => ["reference", "metadata.k"].contains(&field),
            };
            let got = check(json!({"strategy": "one_to_one", "criteria": [criterion]}));
            if applies {
                assert!(got.is_ok(), "{operator} on {field}: {got:?}");
            } else {
                let expected = InvalidRule::OperatorNotForField {
                    index: 0,
                    operator: Operator::parse(operator).unwrap(),
                    field: Field::parse(field).unwrap(),
                };
                assert_eq!(got, Err(expected), "{operator} on {field}");
            }
        }
    }
}

#[test]
fn within_needs_a_tolerance_and_nothing_else_takes_one() {
    let one = |criterion: serde_json::Value| refused(json!({"strategy": "one_to_one", "criteria": [criterion]}));
    assert_eq!(one(json!({"field": "amount", "operator": "within"})), InvalidRule::MissingTolerance { index: 0 });
    assert_eq!(
        one(json!({"field": "date", "operator": "within", "tolerance": null})),
        InvalidRule::MissingTolerance { index: 0 }
    );
    for operator in [Operator::Equals, Operator::Contains, Operator::Prefix] {
        let body = json!({"field": "reference", "operator": operator.as_str(), "tolerance": "1"});
        assert_eq!(one(body), InvalidRule::UnexpectedTolerance { index: 0, operator });
    }
}

#[test]
fn an_amount_tolerance_is_a_decimal_string() {
    let tolerance = |value: serde_json::Value| {
        check(json!({"strategy": "one_to_one", "criteria": [
            {"field": "reference", "operator": "equals"},
            {"field": "amount", "operator": "within", "tolerance": value}]}))
        .map(|rule| rule.criteria()[1].tolerance)
    };
    for (text, amount) in [
        ("0", "0"),
        ("0.01", "0.01"),
        ("5", "5"),
        ("0.010", "0.010"),
        ("1000000000000000000000000", "1000000000000000000000000"),
    ] {
        assert_eq!(tolerance(json!(text)), Ok(Some(Tolerance::Amount(dec(amount)))), "{text}");
    }
    let too_long = format!("0.{}", "0".repeat(39));
    for value in [
        json!(0.01),
        json!(1),
        json!("-0.01"),
        json!("+1"),
        json!(""),
        json!("."),
        json!("1."),
        json!(".5"),
        json!("1e3"),
        json!("1_000"),
        json!(" 1"),
        json!("0x10"),
        json!("1000000000000000000000000.1"),
        json!(too_long),
        json!("0.00000000000000000000000000001"),
        json!(["1"]),
    ] {
        assert_eq!(tolerance(value.clone()), Err(InvalidRule::InvalidAmountTolerance { index: 1 }), "{value}");
    }
    // 40 characters are read.
    let forty = format!("0.{}1", "0".repeat(26));
    assert_eq!(forty.len(), 29);
    assert_eq!(tolerance(json!(format!("{}{forty}", "0".repeat(11)))), Ok(Some(Tolerance::Amount(dec(&forty)))));
}

#[test]
fn a_date_tolerance_is_whole_seconds_up_to_31_days() {
    let tolerance = |value: serde_json::Value| {
        check(json!({"strategy": "one_to_one", "criteria": [{"field": "date", "operator": "within", "tolerance": value}]}))
            .map(|rule| rule.criteria()[0].tolerance)
    };
    for (value, seconds) in
        [(json!(0), 0), (json!(2_678_400), 2_678_400), (json!("2678400"), 2_678_400), (json!("0000060"), 60)]
    {
        assert_eq!(tolerance(value.clone()), Ok(Some(Tolerance::Seconds(seconds))), "{value}");
    }
    for value in [
        json!(2_678_401),
        json!("2678401"),
        json!(-1),
        json!(60.0),
        json!(1.5),
        json!("-1"),
        json!("1.5"),
        json!(""),
        json!("00000060"),
        json!(u64::MAX),
        json!(4_294_967_296u64),
        json!(true),
    ] {
        assert_eq!(tolerance(value.clone()), Err(InvalidRule::InvalidSecondsTolerance { index: 0 }), "{value}");
    }
}

#[test]
fn group_by_belongs_to_the_group_strategies() {
    let amount = json!([{"field": "amount", "operator": "equals"}]);
    assert_eq!(
        refused(json!({"strategy": "one_to_one", "group_by": "reference", "criteria": amount})),
        InvalidRule::UnexpectedGroupBy
    );
    assert_eq!(
        refused(json!({"strategy": "one_to_many", "criteria": amount})),
        InvalidRule::MissingGroupBy(Strategy::OneToMany)
    );
    assert_eq!(
        refused(json!({"strategy": "many_to_one", "criteria": amount})),
        InvalidRule::MissingGroupBy(Strategy::ManyToOne)
    );
    for group_by in ["amount", "metadata.", "ref"] {
        assert_eq!(
            refused(json!({"strategy": "many_to_one", "group_by": group_by, "criteria": amount})),
            InvalidRule::InvalidGroupBy(group_by.into())
        );
    }
}

#[test]
fn a_group_rule_compares_amounts() {
    let body = json!({"strategy": "one_to_many", "group_by": "reference", "criteria": [
        {"field": "currency", "operator": "equals"}, {"field": "date", "operator": "within", "tolerance": 60}]});
    let error = refused(body);
    assert_eq!(error, InvalidRule::NoAmountCriterion(Strategy::OneToMany));
    assert_eq!(
        error.to_string(),
        "strategy one_to_many compares sums, so it needs an equals or within criterion on amount"
    );
}

#[test]
fn checks_run_in_the_documented_order() {
    // Unknown strategy before the number of criteria, a criterion before group_by, the first
    // bad criterion first.
    assert!(matches!(refused(json!({"strategy": "x", "criteria": []})), InvalidRule::UnknownStrategy(_)));
    let bad = json!({"strategy": "one_to_one", "group_by": "amount", "criteria": [
        {"field": "reference", "operator": "equals"}, {"field": "x", "operator": "y"}, {"field": "amount", "operator": "y"}]});
    assert_eq!(refused(bad), InvalidRule::UnknownField { index: 1, field: "x".into() });
    let bad = json!({"strategy": "one_to_many", "criteria": [{"field": "reference", "operator": "equals"}]});
    assert_eq!(refused(bad), InvalidRule::MissingGroupBy(Strategy::OneToMany));
}

#[test]
fn rule_names() {
    for name in ["a", "0", "settlement-daily_2", &"a".repeat(64)] {
        assert!(is_rule_name(name), "{name}");
    }
    for name in ["", "-a", "_a", "A", "a b", "a.b", "é", &"a".repeat(65)] {
        assert!(!is_rule_name(name), "{name}");
    }
}

#[test]
fn every_reason_reads_as_a_sentence() {
    let reasons = [
        InvalidRule::TooManyCriteria { count: 17 }.to_string(),
        InvalidRule::MissingTolerance { index: 2 }.to_string(),
        InvalidRule::UnexpectedTolerance { index: 2, operator: Operator::Prefix }.to_string(),
        InvalidRule::OperatorNotForField { index: 1, operator: Operator::Within, field: Field::Metadata("k".into()) }
            .to_string(),
        InvalidRule::MissingGroupBy(Strategy::ManyToOne).to_string(),
        InvalidRule::InvalidGroupBy("amount".into()).to_string(),
    ];
    assert_eq!(reasons[0], "a rule has at most 16 criteria, this one has 17");
    assert_eq!(reasons[1], "criteria[2]: within needs a tolerance");
    assert_eq!(reasons[2], "criteria[2]: prefix takes no tolerance");
    assert!(reasons[3].starts_with("criteria[1]: within does not apply to metadata.k"), "{}", reasons[3]);
    assert_eq!(reasons[4], "strategy many_to_one needs group_by");
    assert_eq!(reasons[5], "group_by \"amount\" is not reference, currency, date or metadata.<key>");
}
