//! Unit tests of the compiled filter: errors and their positions, index terms, fields read,
//! evaluation over hand-made rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::Filter;
use crate::doc::Value;
use crate::error::Error;
use crate::schema::{CollectionSchema, DataType, FieldSchema, VectorSchema};

fn schema() -> CollectionSchema {
    CollectionSchema::new("t")
        .field(FieldSchema::new("n", DataType::Int32).nullable())
        .field(FieldSchema::new("big", DataType::Int64))
        .field(FieldSchema::new("u", DataType::UInt32))
        .field(FieldSchema::new("f", DataType::Float))
        .field(FieldSchema::new("d", DataType::Double))
        .field(FieldSchema::new("s", DataType::String).nullable())
        .field(FieldSchema::new("b", DataType::Bool))
        .field(FieldSchema::new("tags", DataType::ArrayString).nullable())
        .field(FieldSchema::new("ints", DataType::ArrayInt32))
        .field(FieldSchema::new("my-field", DataType::Int32))
        .vector(VectorSchema::new("v", 2))
}

/// A row: n, big, u, f, d, s, b, tags, ints, my-field.
fn row(n: Option<i32>, s: Option<&str>, tags: Option<Vec<&str>>) -> Vec<Value> {
    vec![
        n.into(),
        Value::Int64(7),
        Value::UInt32(3),
        Value::Float(0.1),
        Value::Double(2.5),
        s.into(),
        Value::Bool(true),
        tags.map(Value::from).unwrap_or(Value::Null),
        Value::Int32Array(vec![1, 2, 3]),
        Value::Int32(5),
    ]
}

fn compile(expr: &str) -> Filter {
    match Filter::compile(&schema(), expr) {
        Ok(Some(f)) => f,
        other => panic!("{expr}: {other:?}"),
    }
}

fn eval(expr: &str, row: &[Value]) -> bool {
    compile(expr).matches(|i| &row[i])
}

/// The reason and position of the error `expr` compiles to.
fn error(expr: &str) -> (String, Option<usize>) {
    match Filter::compile(&schema(), expr) {
        Err(Error::InvalidFilter {
            expr: e,
            position,
            reason,
        }) => {
            assert_eq!(e, expr);
            (reason, position)
        }
        other => panic!("{expr}: expected an error, got {other:?}"),
    }
}

#[test]
fn empty_is_no_filter() {
    assert!(Filter::compile(&schema(), "").unwrap().is_none());
    assert!(Filter::compile(&schema(), " \t\n").unwrap().is_none());
}

#[test]
fn errors_name_the_field_and_locate_it() {
    let (reason, pos) = error("n = 1 AND zz = 2");
    assert_eq!(reason, "field 'zz' not defined in schema");
    assert_eq!(pos, Some(10));
    let (reason, pos) = error("n = 3.5");
    assert_eq!(reason, "type mismatch: int32 field n vs 3.5");
    assert_eq!(pos, Some(4));
    let (reason, _) = error("n = -3.5");
    assert_eq!(reason, "type mismatch: int32 field n vs -3.5");
    let (reason, _) = error("b = 1");
    assert_eq!(reason, "type mismatch: bool field b vs 1");
    let (reason, _) = error("s = 1");
    assert_eq!(reason, "type mismatch: string field s vs 1");
    let (reason, _) = error("n = 'x'");
    assert_eq!(reason, "type mismatch: int32 field n vs 'x'");
    let (reason, pos) = error("s = 'a' OR\n n IN ()");
    assert_eq!(reason, "IN () needs at least one value (field n)");
    assert_eq!(pos, Some(12));
    let (reason, _) = error("n NOT IN ()");
    assert!(reason.contains("field n"), "{reason}");
    let (reason, _) = error("pk = 'a'");
    assert!(
        reason.contains("field 'pk' not defined in schema"),
        "{reason}"
    );
    let (reason, _) = error("v = 1");
    assert!(reason.contains("vector field"), "{reason}");
    let (reason, _) = error("tags = 'a'");
    assert!(reason.contains("array_string field tags"), "{reason}");
    let (reason, _) = error("n CONTAIN_ANY (1)");
    assert_eq!(reason, "CONTAIN_ANY needs an array field; n is int32");
    let (reason, _) = error("tags CONTAIN_ALL (1)");
    assert_eq!(reason, "type mismatch: array_string field tags vs 1");
    let (reason, _) = error("array_length(n) = 1");
    assert!(reason.contains("array_length needs an array field; n is int32"));
    let (reason, _) = error("array_length(tags) = 1.5");
    assert_eq!(reason, "type mismatch: array_length(tags) vs 1.5");
    let (reason, _) = error("n LIKE 'a'");
    assert!(reason.contains("LIKE needs a string field; n is int32"));
    let (reason, _) = error("n = NULL");
    assert!(reason.contains("IS NULL"));
    let (reason, _) = error("n = big");
    assert!(reason.contains("two fields"));
    let (reason, _) = error("b < true");
    assert!(reason.contains("bool field b"));
}

#[test]
fn zvec_syntax_errors() {
    for (expr, pos) in [
        ("s == 'a'", 2),
        ("n <> 1", 2),
        ("n = 1 && n = 2", 6),
        ("n = 1 || n = 2", 6),
        ("!(n = 1)", 0),
        ("n = 1 AND", 9),
    ] {
        let (reason, p) = error(expr);
        assert!(reason.starts_with("syntax error"), "{expr}: {reason}");
        assert_eq!(p, Some(pos), "{expr}: {reason}");
    }
    for expr in [
        "n",
        "1",
        "n = 1 n = 2",
        "(n = 1",
        "n = 1)",
        "n IN (1,)",
        "s LIKE 'a' ESCAPE '!'",
        "s ILIKE 'a'",
        "n = 1 + 1",
        "n = - - 1",
        "n = ",
        "'abc",
        "n = 1;",
        "t.n = 1",
        "tags CONTAIN_ANY 'a'",
        "tags CONTAIN_ANY ('a'",
        "lower(s) = 'a'",
        "b IS TRUE",
        "n = 0x10",
        "\"s\" = 'a'",
    ] {
        let (reason, _) = error(expr);
        assert!(!reason.is_empty(), "{expr}");
    }
}

#[test]
fn deep_or_long_expressions_are_refused_or_handled_without_overflow() {
    let chain = vec!["n = 1"; 3000].join(" AND ");
    assert!(eval(&chain, &row(Some(1), None, None)));
    let nots = format!("{}n = 1", "NOT ".repeat(200));
    assert!(Filter::compile(&schema(), &nots).is_err());
    let nots = format!("{}n = 1", "NOT ".repeat(64));
    assert!(eval(&nots, &row(Some(1), None, None)));
    let (reason, _) = error(&format!("{}n = 1", "NOT ".repeat(65)));
    assert!(reason.contains("64 levels"), "{reason}");
    let parens = format!("{}n = 1{}", "(".repeat(120), ")".repeat(120));
    assert!(eval(&parens, &row(Some(1), None, None)));
    // Alternating AND/OR, each level in parentheses.
    let mut nested = "n = 1".to_string();
    for level in 0..30 {
        let op = if level % 2 == 0 { "AND" } else { "OR" };
        nested = format!("(n = 1 {op} {nested})");
    }
    assert!(eval(&nested, &row(Some(1), None, None)));
    let parens = format!("{}n = 1{}", "(".repeat(500), ")".repeat(500));
    assert!(Filter::compile(&schema(), &parens).is_err());
    let long = vec!["n = 1"; 20_000].join(" OR ");
    assert!(Filter::compile(&schema(), &long).is_err());
    let eqs = vec!["1"; 20_000].join(" = ");
    assert!(Filter::compile(&schema(), &format!("n = {eqs}")).is_err());
    // Just under the operator cap: parsed (deep trees), refused or compiled, never overflowing.
    let eqs = vec!["1"; 9_999].join(" = ");
    assert!(Filter::compile(&schema(), &format!("n = {eqs}")).is_err());
    let plus = vec!["1"; 9_998].join(" + ");
    assert!(Filter::compile(&schema(), &format!("n = {plus}")).is_err());
    let minus = vec!["1"; 50_000].join(" - ");
    assert!(Filter::compile(&schema(), &format!("n IN ({minus})")).is_err());
    let minus = vec!["-1"; 50_000].join(" - ");
    assert!(Filter::compile(&schema(), &format!("n IN ({minus})")).is_err());
    let ors = vec!["n = 1"; 4_999].join(" OR ");
    assert!(eval(&ors, &row(Some(1), None, None)));
    let nots = format!("{}n = 1", "NOT ".repeat(9_990));
    assert!(Filter::compile(&schema(), &nots).is_err());
    let parens = format!("{}n = 1{}", "(".repeat(4_990), ")".repeat(4_990));
    assert!(Filter::compile(&schema(), &parens).is_err());
    let tags = format!("tags CONTAIN_ANY ({})", vec!["'a'"; 50_000].join(","));
    assert!(eval(&tags, &row(Some(1), None, Some(vec!["a"]))));
    let list = (0..20_000).map(|i| (-i).to_string()).collect::<Vec<_>>();
    let f = compile(&format!("n IN ({})", list.join(", ")));
    let r = row(Some(-19_999), None, None);
    assert!(f.matches(|i| &r[i]));
}

#[test]
fn keywords_and_quoting() {
    let r = row(Some(3), Some("it's"), Some(vec!["a"]));
    assert!(eval("n = 3 and s = \"it's\"", &r));
    assert!(eval("n = 3 And s = 'it''s'", &r));
    assert!(eval("`my-field` = 5", &r));
    assert!(eval("b = TRUE AND b != False", &r));
    assert!(eval("n=3", &r));
    assert!(eval(
        "tags contain_any ('a') and tags not contain_all ('a', 'b')",
        &r
    ));
    assert!(eval(
        "array_length(ints) = 3 AND ARRAY_LENGTH(tags) IN (1, 2)",
        &r
    ));
    assert!(eval("3 = n AND 4 > n AND 'it' < s", &r));
    assert!(eval("(n) = (3)", &r));
}

#[test]
fn null_is_unknown() {
    let null = row(None, None, None);
    for expr in [
        "n = 1",
        "n != 1",
        "n < 1",
        "n IN (1)",
        "n NOT IN (1)",
        "n BETWEEN 1 AND 2",
        "n NOT BETWEEN 1 AND 2",
        "s LIKE '%'",
        "s NOT LIKE 'a'",
        "tags CONTAIN_ANY ('a')",
        "tags NOT CONTAIN_ANY ('a')",
        "tags CONTAIN_ALL ()",
        "tags NOT CONTAIN_ALL ('a')",
        "array_length(tags) = 0",
        "array_length(tags) != 0",
        "NOT (n = 1)",
        "NOT n = 1",
        "NOT (n = 1 OR s = 'a')",
        "n = 1 OR n != 1",
    ] {
        assert!(!eval(expr, &null), "{expr}");
    }
    assert!(eval(
        "n IS NULL AND tags IS NULL AND NOT (n IS NOT NULL)",
        &null
    ));
    assert!(eval("n = 1 OR b = true", &null));
    assert!(eval("NOT (n = 1 AND b = false)", &null));
    assert!(!eval("NOT (n = 1 AND b = true)", &null));
}

#[test]
fn arrays() {
    let empty = row(Some(1), None, Some(vec![]));
    let ab = row(Some(1), None, Some(vec!["a", "b"]));
    assert!(eval("tags IS NOT NULL AND array_length(tags) = 0", &empty));
    assert!(!eval("tags CONTAIN_ANY ()", &empty));
    assert!(!eval("tags CONTAIN_ANY ()", &ab));
    assert!(eval("tags NOT CONTAIN_ANY ()", &ab));
    assert!(eval("tags CONTAIN_ALL ()", &empty));
    assert!(eval("tags CONTAIN_ALL ()", &ab));
    assert!(!eval("tags NOT CONTAIN_ALL ()", &ab));
    assert!(eval("tags NOT CONTAIN_ANY ('x', 'y')", &empty));
    assert!(eval("tags CONTAIN_ALL ('b', 'a', 'a')", &ab));
    assert!(!eval("tags CONTAIN_ALL ('b', 'c')", &ab));
    assert!(eval(
        "ints CONTAIN_ALL (3, 1) AND ints NOT CONTAIN_ANY (4, -1, 99999999999)",
        &ab
    ));
    assert!(!eval("ints CONTAIN_ANY (99999999999)", &ab));
}

#[test]
fn numbers() {
    let r = row(Some(-5), None, None);
    // Out-of-range literals: exact comparisons over all integers.
    assert!(!eval("u = -1", &r));
    assert!(eval("u != -1 AND u > -1 AND u >= -1", &r));
    assert!(!eval("big = 9223372036854775808", &r));
    assert!(eval("big < 9223372036854775808", &r));
    assert!(eval(
        "big > -99999999999999999999999999999999999999999999",
        &r
    ));
    assert!(eval("n IN (-5, 99999999999) AND u NOT IN (-1)", &r));
    // Floats: the literal is converted to the field's type.
    assert!(eval("f = 0.1 AND f <= 0.1 AND f >= 0.1", &r));
    assert!(eval(
        "d = 2.5 AND d > 2 AND d BETWEEN 2 AND 3 AND d NOT BETWEEN 3 AND 2",
        &r
    ));
    assert!(eval("f < 1e300 AND d > -1E3", &r));
    assert!(eval("n = -5 AND n != +5 AND n = - 5", &r));
    let (reason, _) = error("n = -5.0e0");
    assert_eq!(reason, "type mismatch: int32 field n vs -5.0e0");
}

#[test]
fn nan_is_a_value_unequal_to_everything() {
    let mut r = row(Some(1), None, None);
    r[3] = Value::Float(f32::NAN);
    assert!(eval("f != 1", &r));
    assert!(!eval(
        "f = 1 OR f < 1 OR f > 1 OR f IN (1) OR f BETWEEN 0 AND 2",
        &r
    ));
    assert!(eval(
        "NOT (f < 1) AND f NOT IN (1) AND f NOT BETWEEN 0 AND 2",
        &r
    ));
}

#[test]
fn fields_and_equality_terms() {
    let f = compile("s = 'a' AND (n > 1 OR n < -1) AND array_length(tags) = 1");
    assert_eq!(f.fields(), &[0, 5, 7]);
    assert_eq!(f.equality_terms(), Some((5, vec![Value::from("a")])));
    let f = compile("n IN (3, 1, 2, 1, -1) AND s IN ('x', 'y')");
    assert_eq!(
        f.equality_terms(),
        Some((5, vec![Value::from("x"), Value::from("y")]))
    );
    let f = compile("u IN (3, -1, 4294967296)");
    assert_eq!(f.equality_terms(), Some((2, vec![Value::UInt32(3)])));
    let f = compile("n IN (1, 2) AND u = 7 AND s = 'a'");
    assert_eq!(
        f.equality_conjuncts(),
        &[
            (2, vec![Value::UInt32(7)]),
            (5, vec![Value::from("a")]),
            (0, vec![Value::Int32(1), Value::Int32(2)]),
        ]
    );
    let f = compile("u = -1");
    assert_eq!(f.equality_terms(), Some((2, vec![])));
    assert_eq!(
        compile("f = 1").equality_terms(),
        Some((3, vec![Value::Float(1.0)]))
    );
    assert_eq!(
        compile("b = true").equality_terms(),
        Some((6, vec![Value::Bool(true)]))
    );
    assert_eq!(compile("n = 1 OR n = 2").equality_terms(), None);
    assert_eq!(compile("NOT n = 1").equality_terms(), None);
    assert_eq!(compile("n NOT IN (1)").equality_terms(), None);
    assert_eq!(compile("array_length(tags) = 1").equality_terms(), None);
    assert_eq!(
        compile("(n = 1 AND (s = 'a' AND n IN (1, 2)))").equality_terms(),
        Some((0, vec![Value::Int32(1)]))
    );
}

#[test]
fn like() {
    let r = row(None, Some("a_b"), None);
    assert!(eval(
        "s LIKE 'a_b' AND s LIKE 'a%' AND s LIKE '%b' AND s NOT LIKE 'A%'",
        &r
    ));
    assert!(eval("s LIKE '___' AND s NOT LIKE '__'", &r));
    let r = row(None, Some("a%b"), None);
    assert!(eval("s LIKE 'a_b'", &r));
}
