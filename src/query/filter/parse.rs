//! Syntax: zvec's filter grammar as a `sqlparser` dialect, and syntax errors located in the
//! expression.
//!
//! The tokens are checked before parsing: only literals, words, parentheses, commas, signs and
//! the comparison operators zvec knows may appear, so `==`, `<>`, `&&`, `||`, `!` (which SQL
//! dialects read in various ways) are syntax errors here as in zvec. The dialect adds zvec's
//! infix `CONTAIN_ANY (..)`, `CONTAIN_ALL (..)` and their `NOT` forms, which it returns as a
//! [`BinaryOperator::Custom`] whose right side is the [`Expr::Tuple`] of the list: only this
//! dialect builds such operators, so no other spelling reaches them.

use sqlparser::ast::{BinaryOperator, Expr};
use sqlparser::dialect::{Dialect, Precedence};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::error::{Error, Result};

/// `CONTAIN_ANY`, as the custom operator's name.
pub(super) const CONTAIN_ANY: &str = "CONTAIN_ANY";
/// `CONTAIN_ALL`, as the custom operator's name.
pub(super) const CONTAIN_ALL: &str = "CONTAIN_ALL";
/// `NOT CONTAIN_ANY`, as the custom operator's name.
pub(super) const NOT_CONTAIN_ANY: &str = "NOT CONTAIN_ANY";
/// `NOT CONTAIN_ALL`, as the custom operator's name.
pub(super) const NOT_CONTAIN_ALL: &str = "NOT CONTAIN_ALL";

/// The most operators and keywords an expression may have. `sqlparser` builds a chain of infix
/// operators (`a = 1 AND b = 2 AND ...`) as a tree as deep as the chain is long, and dropping it
/// recurses that deep: this bounds the depth well below what a 2 MiB thread stack survives in
/// an unoptimised build (measured: above 20,000). Literals, field names, parentheses (whose
/// nesting the parser's recursion limit bounds) and commas do not count, so `IN` lists may be
/// long.
const MAX_OPERATORS: usize = 10_000;

/// How deeply `sqlparser` may recurse (parentheses, `NOT`): above the compiler's own limit of
/// 64 levels, so that `NOT` chains get its clearer error. `sqlparser` grows its stack on demand.
const RECURSION_LIMIT: usize = 160;

/// The expression being compiled, to build errors that name it and locate their token.
pub(super) struct Source<'a> {
    text: &'a str,
}

impl<'a> Source<'a> {
    /// Wraps the expression text.
    pub(super) fn new(text: &'a str) -> Self {
        Source { text }
    }

    /// The 0-based character offset of a tokenizer location (1-based line and column).
    pub(super) fn offset(&self, loc: Location) -> Option<usize> {
        if loc.line == 0 || loc.column == 0 {
            return None;
        }
        let mut line = 1u64;
        let mut start = 0usize;
        for (i, c) in self.text.chars().enumerate() {
            if line == loc.line {
                break;
            }
            if c == '\n' {
                line += 1;
                start = i + 1;
            }
        }
        (line == loc.line).then(|| start + (loc.column - 1) as usize)
    }

    /// An [`Error::InvalidFilter`] for this expression.
    pub(super) fn error(&self, loc: Option<Location>, reason: impl Into<String>) -> Error {
        self.error_at(loc.and_then(|l| self.offset(l)), reason)
    }

    /// An [`Error::InvalidFilter`] at a character offset.
    fn error_at(&self, position: Option<usize>, reason: impl Into<String>) -> Error {
        Error::InvalidFilter {
            expr: self.text.to_string(),
            position,
            reason: reason.into(),
        }
    }

    /// Whether the text at `loc` starts with `prefix`.
    fn starts_with_at(&self, loc: Location, prefix: &str) -> bool {
        self.offset(loc)
            .and_then(|o| self.text.char_indices().nth(o))
            .is_some_and(|(b, _)| self.text[b..].starts_with(prefix))
    }
}

/// zvec's dialect: plain identifiers of letters, digits and `_`, backtick-quoted identifiers,
/// `"..."` as a string literal, and the infix array operators.
#[derive(Debug)]
struct ZvecDialect;

/// Which array operator, if any, the word token is.
fn contain_word(token: &Token) -> Option<&'static str> {
    match token {
        Token::Word(w) if w.quote_style.is_none() => {
            if w.value.eq_ignore_ascii_case(CONTAIN_ANY) {
                Some(CONTAIN_ANY)
            } else if w.value.eq_ignore_ascii_case(CONTAIN_ALL) {
                Some(CONTAIN_ALL)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn is_not(token: &Token) -> bool {
    matches!(token, Token::Word(w) if w.keyword == Keyword::NOT && w.quote_style.is_none())
}

/// The array operator the parser is looking at (`NOT` included), and how many tokens it takes.
fn peek_contain(parser: &Parser) -> Option<(&'static str, usize)> {
    let negated = is_not(&parser.peek_token_ref().token);
    let name = contain_word(&parser.peek_nth_token_ref(usize::from(negated)).token)?;
    Some(match (negated, name) {
        (false, name) => (name, 1),
        (true, CONTAIN_ANY) => (NOT_CONTAIN_ANY, 2),
        (true, _) => (NOT_CONTAIN_ALL, 2),
    })
}

fn parse_contain(
    parser: &mut Parser,
    left: &Expr,
    name: &'static str,
    tokens: usize,
) -> std::result::Result<Expr, ParserError> {
    let mut at = parser.peek_token_ref().span.start;
    for _ in 0..tokens {
        at = parser.next_token().span.start;
    }
    // Only a field may stand on the left; refusing anything else here also spares cloning a
    // large subtree.
    if !matches!(left, Expr::Identifier(_)) {
        return Err(ParserError::ParserError(format!(
            "{name} needs an array field on its left{at}"
        )));
    }
    parser.expect_token(&Token::LParen)?;
    let list = parser.parse_comma_separated0(Parser::parse_expr, Token::RParen)?;
    parser.expect_token(&Token::RParen)?;
    Ok(Expr::BinaryOp {
        left: Box::new(left.clone()),
        op: BinaryOperator::Custom(name.to_string()),
        right: Box::new(Expr::Tuple(list)),
    })
}

impl Dialect for ZvecDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_'
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        // `"` is left out so that the tokenizer reads `"abc"` as a string, as zvec does.
        ch == '`'
    }

    fn supports_in_empty_list(&self) -> bool {
        // Parsed so that the compiler can refuse it with an error naming the field.
        true
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<std::result::Result<u8, ParserError>> {
        peek_contain(parser).map(|_| Ok(self.prec_value(Precedence::Between)))
    }

    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        _precedence: u8,
    ) -> Option<std::result::Result<Expr, ParserError>> {
        let (name, tokens) = peek_contain(parser)?;
        Some(parse_contain(parser, expr, name, tokens))
    }
}

/// Tokenizes and parses `source` into one expression, or a syntax error located at its token.
pub(super) fn parse(source: &Source<'_>) -> Result<Expr> {
    let dialect = ZvecDialect;
    let tokens = Tokenizer::new(&dialect, source.text)
        .tokenize_with_location()
        .map_err(|e| source.error(Some(e.location), format!("syntax error: {}", e.message)))?;
    check_tokens(source, &tokens)?;
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(tokens);
    let expr = parser.parse_expr().map_err(|e| parser_error(source, e))?;
    let next = parser.peek_token_ref();
    if next.token != Token::EOF {
        return Err(source.error(
            Some(next.span.start),
            format!("syntax error: unexpected `{}`", next.token),
        ));
    }
    Ok(expr)
}

/// Refuses every token outside zvec's grammar, naming the operator to use instead.
fn check_tokens(source: &Source<'_>, tokens: &[TokenWithSpan]) -> Result<()> {
    let mut operators = 0usize;
    for (i, t) in tokens.iter().enumerate() {
        let refuse = |reason: String| Err(source.error(Some(t.span.start), reason));
        match &t.token {
            Token::Whitespace(_)
            | Token::EOF
            | Token::Comma
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::Number(_, false) => continue,
            // The signs of an `IN` list's numbers; other signs count (`1 - 1 - ...` is a chain).
            Token::Minus | Token::Plus if is_list_sign(tokens, i) => continue,
            Token::LParen | Token::RParen => continue,
            Token::Word(w)
                if w.keyword == Keyword::NoKeyword && contain_word(&t.token).is_none() =>
            {
                continue
            }
            Token::Word(_)
            | Token::Eq
            | Token::Lt
            | Token::LtEq
            | Token::Gt
            | Token::GtEq
            | Token::Minus
            | Token::Plus => {}
            Token::Neq if source.starts_with_at(t.span.start, "!=") => {}
            Token::Neq => return refuse("syntax error: `<>` is not an operator; use !=".into()),
            Token::DoubleEq => {
                return refuse("syntax error: `==` is not an operator; use =".into())
            }
            Token::Overlap => {
                return refuse("syntax error: `&&` is not an operator; use AND".into())
            }
            Token::StringConcat => {
                return refuse("syntax error: `||` is not an operator; use OR".into())
            }
            Token::ExclamationMark => {
                return refuse("syntax error: `!` is not an operator; use NOT or !=".into())
            }
            other => return refuse(format!("syntax error: unexpected `{other}`")),
        }
        operators += 1;
        if operators > MAX_OPERATORS {
            return refuse(format!(
                "the expression has more than {MAX_OPERATORS} operators and keywords"
            ));
        }
    }
    Ok(())
}

/// Whether `tokens[i]` is the sign of a number right after `(` or `,`.
fn is_list_sign(tokens: &[TokenWithSpan], i: usize) -> bool {
    let significant = |t: &&TokenWithSpan| !matches!(t.token, Token::Whitespace(_));
    let before = tokens[..i].iter().rev().find(significant);
    let after = tokens[i + 1..].iter().find(significant);
    matches!(before.map(|t| &t.token), Some(Token::LParen | Token::Comma))
        && matches!(after.map(|t| &t.token), Some(Token::Number(..)))
}

/// A parser error, with the location `sqlparser` writes into its message moved to the
/// error's position.
fn parser_error(source: &Source<'_>, e: ParserError) -> Error {
    match e {
        ParserError::RecursionLimitExceeded => {
            source.error(None, "syntax error: the expression nests too deeply")
        }
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
            let (message, loc) = split_location(&m);
            let position = match loc {
                Some(loc) => source.offset(loc),
                // `sqlparser` gives no location for the end of the input.
                None if message.ends_with("EOF") => Some(source.text.chars().count()),
                None => None,
            };
            source.error_at(position, format!("syntax error: {message}"))
        }
    }
}

/// Splits `"... at Line: 1, Column: 7"` (sqlparser's errors) into the message and the location.
pub(super) fn split_location(message: &str) -> (&str, Option<Location>) {
    let parsed = message.rsplit_once(" at Line: ").and_then(|(m, rest)| {
        let (line, column) = rest.split_once(", Column: ")?;
        let loc = Location {
            line: line.trim().parse().ok()?,
            column: column.trim().parse().ok()?,
        };
        Some((m, loc))
    });
    match parsed {
        Some((m, loc)) => (m, Some(loc)),
        None => (message, None),
    }
}
