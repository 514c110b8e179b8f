//! The filter language through the public API: every construct, zvec's cases 30–38 and 40
//! (reference §5), the NULL table, every error, and `delete_by_filter` — each on several
//! storage layouts (the writing segment, persisted segments, a mix, after close + reopen, after
//! a kill + WAL replay, after optimize) that must all give the same rows.

use std::path::Path;
use std::sync::Arc;

use stratavec::storage::{SimStorage, Storage};
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, DocStatus, Error, FieldSchema,
    OpenOptions, Query, VectorSchema,
};

const PATH: &str = "/db/c";

/// Every scalar field nullable, so that each dataset sets only what it needs.
fn schema() -> CollectionSchema {
    let fields = [
        ("n", DataType::Int32),
        ("big", DataType::Int64),
        ("u", DataType::UInt32),
        ("f", DataType::Float),
        ("d", DataType::Double),
        ("s", DataType::String),
        ("b", DataType::Bool),
        ("tags", DataType::ArrayString),
        ("ints", DataType::ArrayInt32),
        ("age", DataType::Int64),
        ("name", DataType::String),
    ];
    fields
        .into_iter()
        .fold(CollectionSchema::new("c"), |s, (name, ty)| {
            s.field(FieldSchema::new(name, ty).nullable())
        })
        .vector(VectorSchema::new("v", 2))
}

fn sim() -> SimStorage {
    let sim = SimStorage::new();
    sim.create_dir_all(Path::new("/db")).unwrap();
    sim
}

fn create(sim: &SimStorage) -> Collection {
    Collection::create(
        PATH,
        schema(),
        CollectionOptions::default().storage(Arc::new(sim.clone())),
    )
    .unwrap()
}

fn reopen(sim: &SimStorage) -> Collection {
    Collection::open(PATH, OpenOptions::default().storage(Arc::new(sim.clone()))).unwrap()
}

/// Gives each document a vector, so that filtered vector search can be checked too.
fn with_vectors(docs: Vec<Doc>) -> Vec<Doc> {
    docs.into_iter()
        .enumerate()
        .map(|(i, d)| d.vector("v", vec![i as f32, 1.0]))
        .collect()
}

/// The same documents stored in every layout the engine has.
struct Layouts {
    all: Vec<(&'static str, Collection, SimStorage)>,
}

impl Layouts {
    fn new(docs: Vec<Doc>) -> Layouts {
        let docs = with_vectors(docs);
        let insert_in_pairs = |c: &Collection, flush_last: bool| {
            let chunks: Vec<&[Doc]> = docs.chunks(2).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                assert!(c.insert(chunk).unwrap().iter().all(|s| *s == DocStatus::Ok));
                if flush_last || i + 1 < chunks.len() {
                    c.flush().unwrap();
                }
            }
        };
        let mut all = Vec::new();

        let s = sim();
        let c = create(&s);
        c.insert(&docs).unwrap();
        all.push(("writing segment", c, s));

        let s = sim();
        let c = create(&s);
        insert_in_pairs(&c, true);
        all.push(("persisted segments", c, s));

        let s = sim();
        let c = create(&s);
        insert_in_pairs(&c, false);
        all.push(("persisted + writing", c, s));

        let s = sim();
        let c = create(&s);
        insert_in_pairs(&c, false);
        c.close().unwrap();
        drop(c);
        let c = reopen(&s);
        all.push(("closed and reopened", c, s));

        let s = sim();
        let c = create(&s);
        insert_in_pairs(&c, false);
        std::mem::forget(c);
        s.crash();
        let c = reopen(&s);
        all.push(("killed and replayed", c, s));

        let s = sim();
        let c = create(&s);
        insert_in_pairs(&c, false);
        c.optimize().unwrap();
        all.push(("optimized", c, s));

        Layouts { all }
    }

    /// `expr` selects exactly `expected` in every layout, by scan and by vector search.
    fn check(&self, expr: &str, expected: &[&str]) {
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        for (layout, c, _) in &self.all {
            let scan = pks(c.query(&Query::new().topk(100_000).filter(expr)));
            assert_eq!(scan, expected, "scan [{expr}] on {layout}");
            let knn = pks(c.query(&Query::vector("v", vec![0.0, 0.0]).topk(1000).filter(expr)));
            assert_eq!(knn, expected, "vector search [{expr}] on {layout}");
        }
    }

    /// The first layout's collection, for error checks.
    fn any(&self) -> &Collection {
        &self.all[0].1
    }
}

fn pks(docs: stratavec::Result<Vec<Doc>>) -> Vec<String> {
    let mut pks: Vec<String> = docs.unwrap().into_iter().map(|d| d.pk).collect();
    pks.sort();
    pks
}

/// zvec's fixture: ages {10, 20, 30, NULL}, names {alpha, beta, gamma, NULL}, tags
/// {[], [a], [b], NULL}.
fn zvec_rows() -> Vec<Doc> {
    vec![
        Doc::new("r10")
            .set("age", 10i64)
            .set("name", "alpha")
            .set("tags", Vec::<String>::new()),
        Doc::new("r20")
            .set("age", 20i64)
            .set("name", "beta")
            .set("tags", vec!["a"]),
        Doc::new("r30")
            .set("age", 30i64)
            .set("name", "gamma")
            .set("tags", vec!["b"]),
        Doc::new("rnull"),
    ]
}

/// Four rows of every type; t4 has every field NULL.
fn typed_rows() -> Vec<Doc> {
    vec![
        Doc::new("t1")
            .set("n", 1)
            .set("big", -5i64)
            .set("u", 0u32)
            .set("f", 0.5f32)
            .set("d", -1.25)
            .set("s", "apple")
            .set("b", true)
            .set("tags", vec!["x", "y"])
            .set("ints", vec![1, 2]),
        Doc::new("t2")
            .set("n", 2)
            .set("big", 9_000_000_000i64)
            .set("u", 4_000_000_000u32)
            .set("f", 1.5f32)
            .set("d", 2.0)
            .set("s", "banana")
            .set("b", false)
            .set("tags", vec!["y"])
            .set("ints", Vec::<i32>::new()),
        Doc::new("t3")
            .set("n", 3)
            .set("big", 0i64)
            .set("u", 7u32)
            .set("f", 0.1f32)
            .set("d", 1e10)
            .set("s", "Apple pie")
            .set("b", true)
            .set("tags", Vec::<String>::new())
            .set("ints", vec![3, 3]),
        Doc::new("t4"),
    ]
}

const ALL3: &[&str] = &["t1", "t2", "t3"];

#[test]
fn zvec_cases_30_to_35() {
    let l = Layouts::new(zvec_rows());
    // 30, 31: NULL is excluded even from `!=`.
    l.check("age != 10 OR age != 20", &["r10", "r20", "r30"]);
    l.check("age != 10 OR age != 10", &["r20", "r30"]);
    // 32
    l.check("age NOT IN (10, 20, 30)", &[]);
    l.check("age NOT IN (99)", &["r10", "r20", "r30"]);
    // 33: an empty array is not NULL.
    l.check("tags IS NOT NULL", &["r10", "r20", "r30"]);
    l.check("tags IS NULL", &["rnull"]);
    l.check("array_length(tags) = 0", &["r10"]);
    // 34
    l.check("tags NOT CONTAIN_ANY ('a', 'b')", &["r10"]);
    l.check("tags NOT CONTAIN_ALL ('a', 'b')", &["r10", "r20", "r30"]);
    // 35
    l.check("name NOT IN ('alpha')", &["r20", "r30"]);
}

#[test]
fn zvec_case_37_like_wildcards_are_case_sensitive() {
    let l = Layouts::new(vec![
        Doc::new("u").set("s", "a_b"),
        Doc::new("p").set("s", "a%b"),
        Doc::new("short").set("s", "ab"),
        Doc::new("upper").set("s", "A_B"),
        Doc::new("long").set("s", "a_bc"),
    ]);
    l.check("s LIKE 'a_b'", &["u", "p"]);
    l.check("s LIKE 'A_B'", &["upper"]);
    l.check("s LIKE 'a%'", &["u", "p", "short", "long"]);
    l.check("s LIKE 'a%b'", &["u", "p", "short"]);
    l.check("s NOT LIKE 'a_b'", &["short", "upper", "long"]);
    l.check("s LIKE '____'", &["long"]);
}

#[test]
fn zvec_case_38_and_binds_tighter_than_or() {
    let l = Layouts::new(vec![
        Doc::new("low").set("n", 1).set("s", "x"),
        Doc::new("high_zeta").set("n", 9).set("s", "zeta"),
        Doc::new("high_other").set("n", 9).set("s", "other"),
        Doc::new("mid_zeta").set("n", 5).set("s", "zeta"),
    ]);
    l.check("n < 2 OR n > 8 AND s='zeta'", &["low", "high_zeta"]);
    l.check("n < 2 or n > 8 and s='zeta'", &["low", "high_zeta"]);
    l.check("(n < 2 OR n > 8) AND s='zeta'", &["high_zeta"]);
    l.check("s='zeta' AND n > 8 OR n < 2", &["low", "high_zeta"]);
}

#[test]
fn zvec_case_40_empty_filter_is_no_filter() {
    let l = Layouts::new(zvec_rows());
    let all = ["r10", "r20", "r30", "rnull"];
    l.check("", &all);
    l.check("   ", &all);
    for (layout, c, _) in &l.all {
        let none = pks(c.query(&Query::new().topk(100)));
        let empty = pks(c.query(&Query::new().topk(100).filter("")));
        assert_eq!(none, empty, "{layout}");
    }
}

#[test]
fn comparisons_on_every_scalar_type() {
    let l = Layouts::new(typed_rows());
    l.check("n = 2", &["t2"]);
    l.check("n != 2", &["t1", "t3"]);
    l.check("n < 2", &["t1"]);
    l.check("n <= 2", &["t1", "t2"]);
    l.check("n > 2", &["t3"]);
    l.check("n >= 2", &["t2", "t3"]);
    l.check("2 < n", &["t3"]);
    l.check("big > 0", &["t2"]);
    l.check("big < 0", &["t1"]);
    l.check("big = 9000000000", &["t2"]);
    l.check("u >= 4000000000", &["t2"]);
    l.check("f = 0.1", &["t3"]);
    l.check("f > 1", &["t2"]);
    l.check("f <= 0.5", &["t1", "t3"]);
    l.check("f = 1", &[]);
    l.check("d = 2", &["t2"]);
    l.check("d = -1.25", &["t1"]);
    l.check("d < 0", &["t1"]);
    l.check("d >= 1e9", &["t3"]);
    l.check("s = 'apple'", &["t1"]);
    l.check("s = \"banana\"", &["t2"]);
    l.check("s > 'apple'", &["t2"]);
    l.check("s < 'apple'", &["t3"]);
    l.check("b = true", &["t1", "t3"]);
    l.check("b = FALSE", &["t2"]);
    l.check("b != True", &["t2"]);
}

#[test]
fn out_of_range_integer_literals_compare_exactly() {
    let l = Layouts::new(typed_rows());
    l.check("u = -1", &[]);
    l.check("u != -1", ALL3);
    l.check("u > -1", ALL3);
    l.check("u < -1", &[]);
    l.check("u IN (-1, 7, 4294967296)", &["t3"]);
    l.check("u NOT IN (-1, 4294967296)", ALL3);
    l.check("big = 9223372036854775808", &[]);
    l.check("big != 9223372036854775808", ALL3);
    l.check("big < 9223372036854775808", ALL3);
    l.check("n > -2147483649", ALL3);
    l.check("ints CONTAIN_ANY (99999999999)", &[]);
    l.check("array_length(tags) > -1", ALL3);
}

#[test]
fn in_between_like_is_null() {
    let l = Layouts::new(typed_rows());
    l.check("n IN (1, 3)", &["t1", "t3"]);
    l.check("n NOT IN (1, 3)", &["t2"]);
    l.check("s IN ('banana', 'cherry')", &["t2"]);
    l.check("b IN (false)", &["t2"]);
    l.check("d IN (2, -1.25)", &["t1", "t2"]);
    l.check("n BETWEEN 2 AND 3", &["t2", "t3"]);
    l.check("n NOT BETWEEN 2 AND 3", &["t1"]);
    l.check("n BETWEEN 3 AND 2", &[]);
    l.check("d BETWEEN -2 AND 2.0", &["t1", "t2"]);
    l.check("s BETWEEN 'a' AND 'b'", &["t1"]);
    l.check("s LIKE 'a%'", &["t1"]);
    l.check("s LIKE '%e%'", &["t1", "t3"]);
    l.check("s LIKE 'A%'", &["t3"]);
    l.check("s LIKE '_pple'", &["t1"]);
    l.check("s LIKE 'appl'", &[]);
    l.check("s NOT LIKE 'a%'", &["t2", "t3"]);
    l.check("n IS NULL", &["t4"]);
    l.check("n IS NOT NULL", ALL3);
    l.check("tags IS NULL", &["t4"]);
    l.check("s IS NULL OR s LIKE 'b%'", &["t2", "t4"]);
}

#[test]
fn array_operators() {
    let l = Layouts::new(typed_rows());
    l.check("tags CONTAIN_ANY ('x')", &["t1"]);
    l.check("tags CONTAIN_ANY ('y', 'zzz')", &["t1", "t2"]);
    l.check("tags CONTAIN_ALL ('x', 'y')", &["t1"]);
    l.check("tags CONTAIN_ALL ('y')", &["t1", "t2"]);
    l.check("tags NOT CONTAIN_ANY ('x')", &["t2", "t3"]);
    l.check("tags NOT CONTAIN_ALL ('x', 'y')", &["t2", "t3"]);
    l.check(
        "tags contain_any ('x') or tags Contain_All ('y')",
        &["t1", "t2"],
    );
    // Empty lists: ANY of nothing is false, ALL of nothing is true (NULL stays excluded).
    l.check("tags CONTAIN_ANY ()", &[]);
    l.check("tags NOT CONTAIN_ANY ()", ALL3);
    l.check("tags CONTAIN_ALL ()", ALL3);
    l.check("tags NOT CONTAIN_ALL ()", &[]);
    l.check("ints CONTAIN_ANY (3, 4)", &["t3"]);
    l.check("ints CONTAIN_ALL (1, 2)", &["t1"]);
    l.check("array_length(tags) = 0", &["t3"]);
    l.check("array_length(tags) >= 1", &["t1", "t2"]);
    l.check("array_length(tags) != 1", &["t1", "t3"]);
    l.check("ARRAY_LENGTH(ints) = 2", &["t1", "t3"]);
    l.check("array_length(ints) BETWEEN 1 AND 2", &["t1", "t3"]);
    l.check("array_length(ints) IN (0, 2)", ALL3);
    l.check("1 < array_length(tags)", &["t1"]);
}

#[test]
fn not_parentheses_and_keyword_case() {
    let l = Layouts::new(typed_rows());
    l.check("NOT n = 1", &["t2", "t3"]);
    l.check("NOT (n = 1 OR b = false)", &["t3"]);
    l.check("NOT (n IS NULL)", ALL3);
    l.check("NOT NOT n = 1", &["t1"]);
    l.check("not (s like 'a%')", &["t2", "t3"]);
    l.check("n = 1 OR n = 2 AND b = true", &["t1"]);
    l.check("(n = 1 OR n = 2) AND b = true", &["t1"]);
    l.check(
        "((n = 1)) OR ((n = 3 AND (s = 'Apple pie')))",
        &["t1", "t3"],
    );
    l.check("n in (1) or n = 2 and b = True", &["t1"]);
    l.check("n = 1 OR n IS NULL", &["t1", "t4"]);
    l.check("n = 1 AND n = 2", &[]);
}

/// zvec's predicate semantics: every comparison with NULL excludes the row, negations included;
/// only IS [NOT] NULL sees NULL. t1..t3 differ from every literal here, so all of them match.
#[test]
fn null_semantics_table() {
    let l = Layouts::new(typed_rows());
    for (expr, expected) in [
        ("n != 99", ALL3),
        ("n NOT IN (99)", ALL3),
        ("n NOT BETWEEN 100 AND 200", ALL3),
        ("NOT (n = 99)", ALL3),
        ("NOT (n > 99)", ALL3),
        ("NOT (n = 99 OR n = 98)", ALL3),
        ("NOT (n IN (99))", ALL3),
        ("s != 'zzz'", ALL3),
        ("s NOT LIKE 'zzz'", ALL3),
        ("NOT (s LIKE 'zzz')", ALL3),
        ("tags NOT CONTAIN_ANY ('zzz')", ALL3),
        ("tags NOT CONTAIN_ALL ('zzz')", ALL3),
        ("NOT (tags CONTAIN_ANY ('zzz'))", ALL3),
        ("array_length(tags) != 99", ALL3),
        ("big != 1", ALL3),
        ("u != 1", ALL3),
        ("d != 0.5", ALL3),
        ("f != 0.25", ALL3),
        ("b != true", &["t2"]),
        ("n = 99 OR n != 99", ALL3),
        ("n IS NULL", &["t4"]),
        ("n IS NOT NULL", ALL3),
        ("NOT (n IS NOT NULL)", &["t4"]),
        // UNKNOWN OR TRUE is TRUE; UNKNOWN AND FALSE is FALSE, so its negation holds.
        ("n = 99 OR n IS NULL", &["t4"]),
        ("NOT (n = 99 AND n IS NOT NULL)", &["t1", "t2", "t3", "t4"]),
        ("NOT (n = 99 AND n IS NULL)", ALL3),
    ] {
        l.check(expr, expected);
    }
}

fn reason_of(result: stratavec::Result<impl std::fmt::Debug>, expr: &str) -> String {
    match result {
        Err(Error::InvalidFilter {
            expr: e, reason, ..
        }) => {
            assert_eq!(e, expr);
            reason
        }
        other => panic!("[{expr}]: expected InvalidFilter, got {other:?}"),
    }
}

#[test]
fn errors_name_the_field() {
    let l = Layouts::new(typed_rows());
    let c = l.any();
    for (expr, wanted) in [
        ("zz = 1", "field 'zz' not defined in schema"),
        ("n = 1 AND zz = 1", "field 'zz' not defined in schema"),
        ("n = 3.5", "type mismatch: int32 field n vs 3.5"),
        ("b = 1", "type mismatch: bool field b vs 1"),
        ("s = 1", "type mismatch: string field s vs 1"),
        ("big IN (1, 'a')", "type mismatch: int64 field big vs 'a'"),
        ("n IN ()", "IN () needs at least one value (field n)"),
        (
            "n NOT IN ()",
            "NOT IN () needs at least one value (field n)",
        ),
        (
            "tags CONTAIN_ANY (1)",
            "type mismatch: array_string field tags vs 1",
        ),
        (
            "n CONTAIN_ANY (1)",
            "CONTAIN_ANY needs an array field; n is int32",
        ),
        ("tags = 'x'", "array_string field tags"),
        ("tags IN ('x')", "array_string field tags"),
        (
            "array_length(n) = 1",
            "array_length needs an array field; n is int32",
        ),
        (
            "array_length(tags) = 0.5",
            "type mismatch: array_length(tags) vs 0.5",
        ),
        ("n LIKE '1%'", "LIKE needs a string field; n is int32"),
        ("pk = 't1'", "field 'pk' not defined in schema"),
        ("v = 1", "'v' is a vector field"),
        ("n = NULL", "IS NULL"),
    ] {
        let reason = reason_of(c.query(&Query::new().filter(expr)), expr);
        assert!(reason.contains(wanted), "[{expr}]: {reason}");
    }
    // Float and double fields take integer literals.
    l.check("f = 1 OR d = 1", &[]);
}

#[test]
fn zvec_syntax_errors() {
    let l = Layouts::new(typed_rows());
    let c = l.any();
    for (expr, position) in [
        ("s == 'a'", 2),
        ("n <> 1", 2),
        ("n = 1 && n = 2", 6),
        ("n = 1 || n = 2", 6),
        ("!(n = 1)", 0),
        ("n = 1 AND", 9),
        ("n = 1 n = 2", 6),
        ("(n = 1", 6),
    ] {
        match c.query(&Query::new().filter(expr)) {
            Err(Error::InvalidFilter {
                position: p,
                reason,
                ..
            }) => {
                assert!(reason.starts_with("syntax error"), "[{expr}]: {reason}");
                assert_eq!(p, Some(position), "[{expr}]: {reason}");
            }
            other => panic!("[{expr}]: {other:?}"),
        }
    }
    let err = c
        .query(&Query::new().filter("n = 1 AND zz = 2"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid filter [n = 1 AND zz = 2]: field 'zz' not defined in schema (at character 10)"
    );
    for expr in [
        "n",
        "n = ",
        "n IN (1,)",
        "'unterminated",
        "n = 1;",
        "n + 1 = 2",
        "s ILIKE 'a'",
        "s LIKE 'a' ESCAPE '!'",
        "lower(s) = 'a'",
        "tags CONTAIN_ANY 'x'",
    ] {
        reason_of(c.query(&Query::new().filter(expr)), expr);
    }
}

#[test]
fn delete_by_filter_frees_the_keys() {
    let l = Layouts::new(zvec_rows());
    for (layout, c, sim) in &l.all {
        // NULL is not deleted by `!=`.
        assert_eq!(c.delete_by_filter("age != 10").unwrap(), 2, "{layout}");
        assert_eq!(
            pks(c.query(&Query::new().topk(100))),
            ["r10", "rnull"],
            "{layout}"
        );
        assert_eq!(c.delete_by_filter("age > 1000").unwrap(), 0, "{layout}");
        let again = with_vectors(vec![
            Doc::new("r20").set("age", 200i64),
            Doc::new("r30").set("age", 300i64),
        ]);
        assert_eq!(
            c.insert(&again).unwrap(),
            [DocStatus::Ok, DocStatus::Ok],
            "{layout}"
        );
        let check = |c: &Collection, when: &str| {
            assert_eq!(
                pks(c.query(&Query::new().topk(100).filter("age >= 200"))),
                ["r20", "r30"],
                "{layout} {when}"
            );
            assert_eq!(
                pks(c.query(&Query::new().topk(100))),
                ["r10", "r20", "r30", "rnull"],
                "{layout} {when}"
            );
        };
        check(c, "after re-insert");
        c.close().unwrap();
        let c = reopen(sim);
        check(&c, "after reopen");
        // Delete again, then crash right away: the delete is durable and the keys stay free.
        assert_eq!(c.delete_by_filter("age BETWEEN 200 AND 300").unwrap(), 2);
        std::mem::forget(c);
        sim.crash();
        let c = reopen(sim);
        assert_eq!(
            pks(c.query(&Query::new().topk(100))),
            ["r10", "rnull"],
            "{layout} after kill"
        );
        let again = with_vectors(vec![Doc::new("r20").set("age", 2000i64)]);
        assert_eq!(c.insert(&again).unwrap(), [DocStatus::Ok], "{layout}");
        c.close().unwrap();
    }
}

#[test]
fn delete_by_filter_refuses_empty_and_invalid_filters() {
    let l = Layouts::new(zvec_rows());
    let c = l.any();
    for expr in ["", "   "] {
        match c.delete_by_filter(expr) {
            Err(e @ Error::EmptyFilter) => assert!(e.to_string().contains("delete_all"), "{e}"),
            other => panic!("[{expr}]: {other:?}"),
        }
    }
    reason_of(c.delete_by_filter("age == 10"), "age == 10");
    reason_of(c.delete_by_filter("zz = 1"), "zz = 1");
    assert_eq!(pks(c.query(&Query::new().topk(100))).len(), 4);
    // The filtered rows only: IS NULL deletes the NULL row.
    assert_eq!(c.delete_by_filter("age IS NULL").unwrap(), 1);
    assert_eq!(pks(c.query(&Query::new().topk(100))), ["r10", "r20", "r30"]);
    assert_eq!(c.fetch(&["rnull"]).unwrap(), Vec::<Doc>::new());
}
