//! `stratavec`: the command-line tool of the stratavec embedded vector database.
//!
//! Every subcommand, flag and `--json` key is a contract that scripts rely on (issue 6): keep
//! them. Errors are one line on stderr and exit code 1; `verify` and `wal verify` exit 2 on
//! corruption.

mod bench_concurrency;
mod bench_insert;
mod bench_search;
mod commands;
mod schema_file;
mod vecs;
mod wal_cmd;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Parser, Subcommand};
use stratavec::wal::FlushPolicy;

/// Why a command failed: a one-line message and the exit code.
#[derive(Debug)]
pub struct CliError {
    /// Exit code: 1 for errors, 2 for corruption found by `verify` or `wal verify`.
    pub code: u8,
    /// The message; `None` exits silently (stdout closed by the reader).
    pub message: Option<String>,
}

impl CliError {
    /// An error with exit code 1.
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            code: 1,
            message: Some(message.into()),
        }
    }
}

impl From<stratavec::Error> for CliError {
    fn from(e: stratavec::Error) -> Self {
        CliError::new(e.to_string())
    }
}

impl From<String> for CliError {
    fn from(e: String) -> Self {
        CliError::new(e)
    }
}

/// The result type of every command.
pub type Res<T = ()> = Result<T, CliError>;

/// Lines on stdout; each is flushed at once (scripts read `import --json` as it goes).
pub struct Out {
    out: std::io::Stdout,
}

impl Out {
    fn new() -> Self {
        Out {
            out: std::io::stdout(),
        }
    }

    /// Writes one line and flushes it. A closed stdout ends the command quietly.
    pub fn line(&mut self, text: &str) -> Res {
        let mut lock = self.out.lock();
        let written = lock
            .write_all(text.as_bytes())
            .and_then(|()| lock.write_all(b"\n"))
            .and_then(|()| lock.flush());
        match written {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(CliError {
                code: 0,
                message: None,
            }),
            Err(e) => Err(CliError::new(format!("write stdout: {e}"))),
        }
    }

    /// Writes one JSON value as one line.
    pub fn json(&mut self, value: &serde_json::Value) -> Res {
        self.line(&value.to_string())
    }
}

/// Whether progress bars may be drawn: only when stderr is a terminal.
pub fn progress_enabled() -> bool {
    std::io::stderr().is_terminal()
}

#[derive(Parser, Debug)]
#[command(
    name = "stratavec",
    version,
    about = "stratavec: an embedded, durable vector database (command-line tool)",
    after_help = "Flush policies: always | every:<N> | interval:<MS> | never.\n\
                  Errors: one line on stderr, exit code 1; `verify` and `wal verify` exit 2 on corruption."
)]
struct Cli {
    /// Print one JSON object per line on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a collection from a JSON schema file.
    Create {
        /// The collection directory (must not exist).
        dir: PathBuf,
        /// The schema file: {"name", "fields": [...], "vectors": [...]}.
        #[arg(long, value_name = "FILE.json")]
        schema: PathBuf,
        /// The flush policy, stored as the default of later opens.
        #[arg(long, value_name = "POLICY")]
        flush_policy: Option<FlushPolicy>,
    },
    /// Insert documents from an .fvecs file or a JSON-lines file (keys already live are left
    /// as they are and counted as existing).
    Import(ImportArgs),
    /// Insert or wholly replace documents, from an .fvecs file or a JSON-lines file.
    Upsert(ImportArgs),
    /// Change the given fields and vectors of live documents, from an .fvecs file or a
    /// JSON-lines file (a field given as null is cleared; keys not live are counted as
    /// not_found).
    Update(ImportArgs),
    /// Nearest-neighbour search (by --fvecs row, --vector or the stored vector of --id) or a
    /// filter-only scan (none of them).
    Query(QueryArgs),
    /// Print the live documents with these primary keys (with --json also a line for each key
    /// not found).
    Fetch {
        /// The collection directory.
        dir: PathBuf,
        /// Primary keys.
        #[arg(required = true, value_name = "PK")]
        pks: Vec<String>,
    },
    /// Delete documents by primary key, or every document matching --filter.
    #[command(group(ArgGroup::new("what").required(true).args(["pks", "filter"])))]
    Delete {
        /// The collection directory.
        dir: PathBuf,
        /// Primary keys.
        #[arg(value_name = "PK")]
        pks: Vec<String>,
        /// Delete every live document matching this filter expression instead.
        #[arg(long, value_name = "EXPR")]
        filter: Option<String>,
        #[command(flatten)]
        open: WriteOpen,
    },
    /// Write every live document (or those matching --filter) as JSON lines, the form
    /// `import --jsonl` reads, in insertion order.
    Export(ExportArgs),
    /// Print how many live documents there are (or match --filter).
    Count {
        /// The collection directory.
        dir: PathBuf,
        /// Count only the documents matching this filter expression.
        #[arg(long, value_name = "EXPR")]
        filter: Option<String>,
    },
    /// Print the schema as JSON, in the form `create --schema` reads.
    Schema {
        /// The collection directory.
        dir: PathBuf,
    },
    /// Delete a collection: its directory and every document in it (only a directory that
    /// holds a stratavec collection, and only with --yes).
    Destroy {
        /// The collection directory.
        dir: PathBuf,
        /// Confirm that the collection and its documents are to be deleted for good.
        #[arg(long)]
        yes: bool,
        /// Open a collection whose WAL is corrupted (see `import --salvage`).
        #[arg(long)]
        salvage: bool,
    },
    /// Check every file of a collection (manifest, delete set, forward stores, graphs, WALs)
    /// and the consistency between them, without changing anything: exit 0 when all is well,
    /// 2 when anything is wrong (each problem listed with its file and offset).
    Verify {
        /// The collection directory.
        dir: PathBuf,
    },
    /// Print counts that describe a collection.
    Stats {
        /// The collection directory.
        dir: PathBuf,
    },
    /// Persist the writing segment (its WAL is then removed).
    Flush {
        /// The collection directory.
        dir: PathBuf,
        /// Open a collection whose WAL is corrupted (see `import --salvage`).
        #[arg(long)]
        salvage: bool,
    },
    /// Merge all segments into one, dropping deleted rows.
    Optimize {
        /// The collection directory.
        dir: PathBuf,
        /// Open a collection whose WAL is corrupted (see `import --salvage`).
        #[arg(long)]
        salvage: bool,
    },
    /// Add a numeric column (int32, int64, uint32, uint64, float, double); existing documents
    /// get --expression computed from their own columns, or --default, or NULL (then
    /// --nullable is required).
    AddColumn {
        /// The collection directory.
        dir: PathBuf,
        /// The new column's name.
        name: String,
        /// Its type.
        #[arg(long = "type", value_name = "TYPE")]
        data_type: String,
        /// Documents may leave it out (NULL).
        #[arg(long)]
        nullable: bool,
        /// The value existing documents get, as JSON (e.g. 0 or 2.5).
        #[arg(long, value_name = "VALUE", conflicts_with = "expression")]
        default: Option<String>,
        /// Arithmetic over existing numeric columns that gives each existing document its
        /// value (zvec's add_column expression), e.g. 'n * 2' or 'price / 100.0': numbers,
        /// fields, + - * / %, unary minus, parentheses. NULL where an operand is NULL.
        #[arg(long, value_name = "EXPR", allow_hyphen_values = true)]
        expression: Option<String>,
        /// Keep an inverted index on it (integer types).
        #[arg(long)]
        inverted: bool,
    },
    /// Drop a scalar column (and its inverted index).
    DropColumn {
        /// The collection directory.
        dir: PathBuf,
        /// The column.
        name: String,
    },
    /// Rename a scalar column and/or widen its numeric type (int32 → int64/double, uint32 →
    /// uint64/int64/double, float → double).
    #[command(group(ArgGroup::new("alteration").required(true).multiple(true).args(["rename", "data_type"])))]
    AlterColumn {
        /// The collection directory.
        dir: PathBuf,
        /// The column.
        name: String,
        /// Its new name.
        #[arg(long, value_name = "NEW")]
        rename: Option<String>,
        /// Its new type.
        #[arg(long = "type", value_name = "TYPE")]
        data_type: Option<String>,
    },
    /// Create an index: inverted on a scalar field, flat or HNSW on a vector field (graphs are
    /// built for every sealed segment before the command returns; the metric stays).
    #[command(group(ArgGroup::new("kind").required(true).args(["inverted", "flat", "hnsw"])))]
    CreateIndex {
        /// The collection directory.
        dir: PathBuf,
        /// The field.
        field: String,
        /// An inverted index on a scalar field.
        #[arg(long)]
        inverted: bool,
        /// Exact search on a vector field.
        #[arg(long)]
        flat: bool,
        /// An HNSW graph on a vector field.
        #[arg(long)]
        hnsw: bool,
        /// HNSW links per node.
        #[arg(long, default_value_t = 16, requires = "hnsw")]
        m: usize,
        /// HNSW beam width while building.
        #[arg(long, default_value_t = 200, requires = "hnsw")]
        ef_construction: usize,
    },
    /// Drop a field's index (a vector field goes back to flat search, keeping its metric); a
    /// field without one is left as it is.
    DropIndex {
        /// The collection directory.
        dir: PathBuf,
        /// The field.
        field: String,
    },
    /// Inspect write-ahead logs.
    #[command(subcommand)]
    Wal(WalCommand),
    /// Benchmarks: insert throughput per flush policy, search recall and speed, search latency
    /// under concurrent writes.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// How a writing command opens the collection.
#[derive(Args, Debug)]
struct WriteOpen {
    /// Override the stored flush policy for this command.
    #[arg(long, value_name = "POLICY")]
    flush_policy: Option<FlushPolicy>,
    /// Open even if the WAL is corrupted: keep its valid records (the damaged file is kept
    /// next to it as .wal.corrupt) instead of refusing to open.
    #[arg(long)]
    salvage: bool,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("source").required(true).args(["fvecs", "jsonl"])))]
struct ImportArgs {
    /// The collection directory.
    dir: PathBuf,
    /// An .fvecs file: row r gets the primary key <id-prefix><r>.
    #[arg(long, value_name = "FILE")]
    fvecs: Option<PathBuf>,
    /// A JSON-lines file ("-": standard input): {"pk": "...", "fields": {...}, "vectors":
    /// {"name": [floats]}}.
    #[arg(long, value_name = "FILE")]
    jsonl: Option<PathBuf>,
    /// Skip the first K rows (fvecs) or lines (jsonl).
    #[arg(long, value_name = "K", default_value_t = 0)]
    offset: usize,
    /// Import at most N rows or lines.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Documents per write call (1..=1024); each call is one WAL record.
    #[arg(long, value_name = "B", default_value_t = 1000)]
    batch: usize,
    /// Primary-key prefix for fvecs rows.
    #[arg(long, value_name = "P", default_value = "")]
    id_prefix: String,
    /// The vector field fvecs rows go to (default: the schema's only vector field).
    #[arg(long, value_name = "F")]
    vector_field: Option<String>,
    /// Skip documents that do not parse or that the schema refuses (each named on stderr,
    /// counted as failed) instead of stopping at the first.
    #[arg(long)]
    skip_invalid: bool,
    #[command(flatten)]
    open: WriteOpen,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("query_vector").args(["fvecs", "vector", "id"])))]
struct QueryArgs {
    /// The collection directory.
    dir: PathBuf,
    /// The vector field searched (default: the schema's only vector field).
    #[arg(long, value_name = "VECTOR_FIELD", requires = "query_vector")]
    field: Option<String>,
    /// Take the query vector from this .fvecs file.
    #[arg(long, value_name = "FILE")]
    fvecs: Option<PathBuf>,
    /// The row of --fvecs used as the query vector.
    #[arg(long, value_name = "I", default_value_t = 0, requires = "fvecs")]
    row: usize,
    /// The query vector: a JSON array such as '[0.1, 0.2]' (or bare comma-separated numbers).
    #[arg(long, value_name = "FLOATS", allow_hyphen_values = true)]
    vector: Option<String>,
    /// Query with the stored vector of the live document with this primary key.
    #[arg(long, value_name = "PK")]
    id: Option<String>,
    /// How many hits.
    #[arg(long, value_name = "K", default_value_t = 10)]
    topk: usize,
    /// Beam width of graph search.
    #[arg(long, value_name = "E")]
    ef: Option<usize>,
    /// A filter expression in zvec's language, e.g. "year >= 2020".
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
    /// Fields to return, comma-separated (default: every scalar field).
    #[arg(long, value_name = "a,b", value_delimiter = ',')]
    output_fields: Option<Vec<String>>,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// The collection directory.
    dir: PathBuf,
    /// Write the documents to this file (replaced once the export is complete) instead of
    /// standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Only documents matching this filter expression.
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
    /// Scalar fields to write, comma-separated (default: all).
    #[arg(long, value_name = "a,b", value_delimiter = ',')]
    fields: Option<Vec<String>>,
    /// Vector fields to write, comma-separated (default: all).
    #[arg(
        long,
        value_name = "a,b",
        value_delimiter = ',',
        conflicts_with = "no_vectors"
    )]
    vectors: Option<Vec<String>>,
    /// Write no vectors.
    #[arg(long)]
    no_vectors: bool,
    /// Write at most N documents; the summary then gives the cursor to continue from.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Continue an earlier export from the cursor its summary printed.
    #[arg(long, value_name = "CURSOR")]
    after: Option<String>,
}

#[derive(Subcommand, Debug)]
enum WalCommand {
    /// List each record of a WAL file and where and why reading stopped.
    Dump {
        /// A WAL file (<collection>/<segment>/<block>.wal).
        wal_file: PathBuf,
    },
    /// Check WAL files: exit 0 when clean, 2 on corruption.
    Verify {
        /// A collection directory (every */*.wal under it) or one WAL file.
        path: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Insert throughput per flush policy x batch size x writer threads.
    Insert(BenchInsertArgs),
    /// Recall and queries/s per ef on fvecs/ivecs data.
    Search(BenchSearchArgs),
    /// Search latency while writers insert and while optimize runs; writer throughput.
    Concurrency(BenchConcurrencyArgs),
    /// Open a persisted collection and run one query, timed in this process (cold start of
    /// an embedding application); prints open and open + first query in ms, and the RSS.
    Open(BenchOpenArgs),
}

#[derive(Args, Debug)]
struct BenchOpenArgs {
    /// The collection directory.
    path: PathBuf,
    /// The vector field to query.
    #[arg(long)]
    field: String,
    /// The query vector: a JSON array or comma-separated numbers.
    #[arg(long, value_name = "VECTOR")]
    vector: String,
    /// Beam width of the graph search.
    #[arg(long, default_value_t = 64)]
    ef: usize,
}

#[derive(Args, Debug)]
struct BenchInsertArgs {
    /// Flush policies, comma-separated.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "always,every:1,every:100,every:1000,interval:10,interval:100,never"
    )]
    policies: Vec<FlushPolicy>,
    /// Documents per write call, comma-separated.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "1,100,1000"
    )]
    batch: Vec<usize>,
    /// Writer threads, comma-separated.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "1,8"
    )]
    threads: Vec<usize>,
    /// Documents written per combination.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    docs: usize,
    /// Vector dimension (each document also has two scalar fields).
    #[arg(long, value_name = "D", default_value_t = 128)]
    dim: usize,
    /// The vector index: flat, or hnsw (m 16, ef_construction 200) for insert-to-ANN-searchable.
    #[arg(long, value_name = "KIND", default_value = "flat")]
    index: bench_insert::IndexChoice,
    /// Runs per combination; the medians are printed.
    #[arg(long, value_name = "R", default_value_t = 1)]
    runs: usize,
    /// Seconds of the raw 4 KiB write + fdatasync loop.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    raw_fsync_secs: f64,
    /// Where the temporary collections live (measure the disk you care about).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct BenchSearchArgs {
    /// Base vectors (.fvecs); row i gets the primary key i.
    #[arg(long, value_name = "FVECS")]
    base: PathBuf,
    /// Query vectors (.fvecs).
    #[arg(long, value_name = "FVECS")]
    query: PathBuf,
    /// Ground truth (.ivecs): base row numbers of each query's nearest neighbours.
    #[arg(long, value_name = "IVECS")]
    gt: PathBuf,
    /// Use the first N base rows.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// l2, ip or cosine.
    #[arg(long, value_name = "METRIC", default_value = "cosine")]
    metric: String,
    /// HNSW links per node.
    #[arg(long, value_name = "M", default_value_t = 16)]
    m: usize,
    /// HNSW beam width while building.
    #[arg(long, value_name = "EF", default_value_t = 200)]
    ef_construction: usize,
    /// Search beam widths, comma-separated.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "16,32,64,128,256"
    )]
    ef: Vec<usize>,
    /// Hits per query (recall@topk).
    #[arg(long, value_name = "K", default_value_t = 10)]
    topk: usize,
    /// Query threads.
    #[arg(long, value_name = "T", default_value_t = 1)]
    threads: usize,
    /// Give base row i the int field cat = i % M ...
    #[arg(long, value_name = "M", requires_all = ["filter_val", "filter_gt"])]
    filter_mod: Option<u32>,
    /// ... and query with the filter cat = V ...
    #[arg(long, value_name = "V", requires = "filter_mod")]
    filter_val: Option<u32>,
    /// ... measuring recall against this ground truth (.ivecs).
    #[arg(long, value_name = "IVECS", requires = "filter_mod")]
    filter_gt: Option<PathBuf>,
    /// Passes over the queries per ef; the median queries/s is printed.
    #[arg(long, value_name = "R", default_value_t = 1)]
    runs: usize,
    /// Load the base in N imports, each persisted with `flush`, then `optimize` (1: one
    /// import, then `flush`).
    #[arg(long, value_name = "N", default_value_t = 1)]
    imports: usize,
    /// Where the temporary collection lives.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct BenchConcurrencyArgs {
    /// Base vectors (.fvecs): the preload and the writers' vectors.
    #[arg(
        long,
        value_name = "FVECS",
        default_value = "data-fixtures/glove50-10000.base.fvecs"
    )]
    base: PathBuf,
    /// Query vectors (.fvecs) of the reader (top 10, ef 64, cycling).
    #[arg(
        long,
        value_name = "FVECS",
        default_value = "data-fixtures/glove50.query.fvecs"
    )]
    query: PathBuf,
    /// Base rows loaded and flushed before the phases.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    preload: usize,
    /// Seconds per phase (optimize lasts as long as it takes).
    #[arg(long, value_name = "S", default_value_t = 3.0)]
    secs: f64,
    /// Whole measurements; the medians per phase are printed.
    #[arg(long, value_name = "R", default_value_t = 1)]
    runs: usize,
    /// Where the temporary collections live.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

fn run(cli: Cli) -> Res {
    let json = cli.json;
    let mut out = Out::new();
    match cli.command {
        Command::Create {
            dir,
            schema,
            flush_policy,
        } => commands::create(&mut out, json, &dir, &schema, flush_policy),
        Command::Import(a) => import(&mut out, json, commands::WriteMode::Insert, a),
        Command::Upsert(a) => import(&mut out, json, commands::WriteMode::Upsert, a),
        Command::Update(a) => import(&mut out, json, commands::WriteMode::Update, a),
        Command::Query(a) => commands::query(
            &mut out,
            json,
            &commands::QueryOptions {
                dir: a.dir,
                field: a.field,
                fvecs: a.fvecs,
                row: a.row,
                vector: a.vector,
                id: a.id,
                topk: a.topk,
                ef: a.ef,
                filter: a.filter,
                output_fields: a.output_fields,
            },
        ),
        Command::Fetch { dir, pks } => commands::fetch(&mut out, json, &dir, &pks),
        Command::Delete {
            dir,
            pks,
            filter,
            open,
        } => commands::delete(&mut out, json, &dir, &pks, filter.as_deref(), &open.into()),
        Command::Export(a) => commands::export(
            &mut out,
            json,
            &commands::ExportOptions {
                dir: a.dir,
                out: a.out,
                filter: a.filter,
                fields: a.fields,
                vectors: if a.no_vectors {
                    Some(Vec::new())
                } else {
                    a.vectors
                },
                limit: a.limit,
                after: a.after,
            },
        ),
        Command::Count { dir, filter } => commands::count(&mut out, json, &dir, filter.as_deref()),
        Command::Schema { dir } => commands::schema(&mut out, json, &dir),
        Command::Destroy { dir, yes, salvage } => {
            commands::destroy(&mut out, json, &dir, yes, salvage)
        }
        Command::Stats { dir } => commands::stats(&mut out, json, &dir),
        Command::Verify { dir } => commands::verify(&mut out, json, &dir),
        Command::Flush { dir, salvage } => commands::flush(&mut out, json, &dir, false, salvage),
        Command::Optimize { dir, salvage } => commands::flush(&mut out, json, &dir, true, salvage),
        Command::AddColumn {
            dir,
            name,
            data_type,
            nullable,
            default,
            expression,
            inverted,
        } => commands::change_schema(
            &mut out,
            json,
            &dir,
            commands::SchemaChange::AddColumn {
                name,
                data_type,
                nullable,
                default,
                expression,
                inverted,
            },
        ),
        Command::DropColumn { dir, name } => commands::change_schema(
            &mut out,
            json,
            &dir,
            commands::SchemaChange::DropColumn { name },
        ),
        Command::AlterColumn {
            dir,
            name,
            rename,
            data_type,
        } => commands::change_schema(
            &mut out,
            json,
            &dir,
            commands::SchemaChange::AlterColumn {
                name,
                rename,
                data_type,
            },
        ),
        Command::CreateIndex {
            dir,
            field,
            inverted,
            flat: _,
            hnsw,
            m,
            ef_construction,
        } => {
            let index = if inverted {
                stratavec::IndexParam::Inverted
            } else if hnsw {
                stratavec::IndexParam::Vector(stratavec::IndexKind::Hnsw { m, ef_construction })
            } else {
                stratavec::IndexParam::Vector(stratavec::IndexKind::Flat)
            };
            commands::change_schema(
                &mut out,
                json,
                &dir,
                commands::SchemaChange::CreateIndex { field, index },
            )
        }
        Command::DropIndex { dir, field } => commands::change_schema(
            &mut out,
            json,
            &dir,
            commands::SchemaChange::DropIndex { field },
        ),
        Command::Wal(WalCommand::Dump { wal_file }) => wal_cmd::dump(&mut out, json, &wal_file),
        Command::Wal(WalCommand::Verify { path }) => wal_cmd::verify(&mut out, json, &path),
        Command::Bench(BenchCommand::Insert(a)) => {
            let config = bench_insert::InsertConfig {
                policies: a.policies,
                batches: a.batch,
                threads: a.threads,
                docs: a.docs,
                dim: a.dim,
                index: a.index,
                runs: a.runs,
                raw_fsync_secs: a.raw_fsync_secs,
                dir: a.dir.unwrap_or_else(std::env::temp_dir),
                progress: progress_enabled(),
            };
            bench_search::insert_command(&mut out, json, &config)
        }
        Command::Bench(BenchCommand::Search(a)) => bench_search::search(
            &mut out,
            json,
            &bench_search::SearchConfig {
                base: a.base,
                query: a.query,
                gt: a.gt,
                limit: a.limit,
                metric: a.metric,
                m: a.m,
                ef_construction: a.ef_construction,
                ef: a.ef,
                topk: a.topk,
                threads: a.threads,
                filter: match (a.filter_mod, a.filter_val, a.filter_gt) {
                    (Some(m), Some(v), Some(gt)) => Some((m, v, gt)),
                    _ => None,
                },
                runs: a.runs,
                imports: a.imports,
                dir: a.dir.unwrap_or_else(std::env::temp_dir),
            },
        ),
        Command::Bench(BenchCommand::Open(a)) => {
            commands::bench_open(&mut out, json, &a.path, &a.field, &a.vector, a.ef)
        }
        Command::Bench(BenchCommand::Concurrency(a)) => {
            let config = bench_concurrency::ConcurrencyConfig {
                base: a.base,
                query: a.query,
                preload: a.preload,
                secs: a.secs,
                runs: a.runs,
                dir: a.dir.unwrap_or_else(std::env::temp_dir),
                progress: progress_enabled(),
            };
            // `line` fails with an empty message when stdout was closed: end quietly then.
            bench_concurrency::run(&config, json, |l| {
                out.line(l).map_err(|e| e.message.unwrap_or_default())
            })
            .map_err(|e| {
                if e.is_empty() {
                    CliError {
                        code: 0,
                        message: None,
                    }
                } else {
                    CliError::new(e)
                }
            })
        }
    }
}

impl From<WriteOpen> for commands::OpenRw {
    fn from(o: WriteOpen) -> Self {
        commands::OpenRw {
            flush_policy: o.flush_policy,
            salvage: o.salvage,
        }
    }
}

/// `import`, `upsert` and `update`: one reader, three write calls.
fn import(out: &mut Out, json: bool, mode: commands::WriteMode, a: ImportArgs) -> Res {
    let source = match (a.fvecs, a.jsonl) {
        (Some(f), None) => commands::Source::Fvecs(f),
        (None, Some(j)) => commands::Source::Jsonl(j),
        _ => {
            return Err(CliError::new(
                "import needs exactly one of --fvecs, --jsonl",
            ))
        }
    };
    commands::import(
        out,
        json,
        &commands::ImportOptions {
            mode,
            dir: a.dir,
            source,
            offset: a.offset,
            limit: a.limit,
            batch: a.batch,
            id_prefix: a.id_prefix,
            vector_field: a.vector_field,
            skip_invalid: a.skip_invalid,
            open: a.open.into(),
        },
    )
}

/// Prints a one-line error on stderr.
fn report(message: &str) {
    let one_line = message.replace(['\n', '\r'], " ");
    let _ = writeln!(std::io::stderr(), "error: {}", one_line.trim());
}

fn main() -> ExitCode {
    // No panic should happen; if one does, it is still one line and exit code 1.
    std::panic::set_hook(Box::new(|info| {
        report(&format!("internal error: {info}"));
        std::process::exit(1);
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = write!(std::io::stderr(), "{}", e.render());
                    ExitCode::from(1)
                }
                _ => {
                    // clap's message, without its usage and tip paragraphs, on one line.
                    let text = e.render().to_string();
                    let message = text
                        .split("\n\n")
                        .next()
                        .unwrap_or("invalid arguments")
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    report(&format!(
                        "{} (see --help)",
                        message.trim_start_matches("error: ")
                    ));
                    ExitCode::from(1)
                }
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(message) = &e.message {
                report(message);
            }
            ExitCode::from(e.code)
        }
    }
}
