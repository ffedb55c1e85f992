//! Statement kinds, classes, CRUD letters and pgAudit classes ([`Kind`]
//! and friends, here), and how the leading keywords give them: the keyword
//! classifier ([`classify`]), the object types DDL/DCL keywords name
//! ([`objtype`]), both reading a statement's [`words::Words`].

pub(crate) mod classify;
pub(crate) mod objtype;
pub(crate) mod words;

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($v),* }
        impl $name {
            pub fn as_str(self) -> &'static str { match self { $($name::$v => $s),* } }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> { s.serialize_str(self.as_str()) }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

str_enum!(
    /// Coarse statement class.
    Class { Read = "read", Write = "write", Ddl = "ddl", Dcl = "dcl", Tcl = "tcl", Session = "session", Utility = "utility", Unknown = "unknown" }
);
str_enum!(
    /// CRUD letter; `None` serializes as the empty string.
    Crud { C = "C", R = "R", U = "U", D = "D", None = "" }
);
str_enum!(
    /// pgAudit's statement classes.
    AuditClass { Read = "READ", Write = "WRITE", Function = "FUNCTION", Role = "ROLE", Ddl = "DDL", Misc = "MISC", MiscSet = "MISC_SET" }
);

macro_rules! kinds {
    ($($v:ident = $s:literal, $class:ident, $crud:ident, $audit:ident;)*) => {
        /// Fine-grained statement kind; serializes as a snake_case string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind { $($v),* }
        impl Kind {
            /// Every kind.
            pub const ALL: &'static [Kind] = &[$(Kind::$v),*];
            pub fn as_str(self) -> &'static str { match self { $(Kind::$v => $s),* } }
            /// Default class of the kind (EXPLAIN ANALYZE and data-modifying
            /// CTEs are adjusted by the analyzer).
            pub fn class(self) -> Class { match self { $(Kind::$v => Class::$class),* } }
            pub fn crud(self) -> Crud { match self { $(Kind::$v => Crud::$crud),* } }
            pub fn audit_class(self) -> AuditClass { match self { $(Kind::$v => AuditClass::$audit),* } }
            pub fn from_name(s: &str) -> Option<Kind> { match s { $($s => Some(Kind::$v),)* _ => None } }
        }
    };
}

kinds! {
    Select = "select", Read, R, Read;
    Insert = "insert", Write, C, Write;
    Update = "update", Write, U, Write;
    Delete = "delete", Write, D, Write;
    Merge = "merge", Write, U, Write;
    CopyFrom = "copy_from", Write, C, Write;
    CopyTo = "copy_to", Read, R, Read;
    Truncate = "truncate", Write, D, Write;
    CreateTableAs = "create_table_as", Ddl, C, Ddl;
    Explain = "explain", Utility, None, Misc;
    Declare = "declare", Read, R, Read;
    Fetch = "fetch", Session, None, Misc;
    Move = "move", Session, None, Misc;
    Close = "close", Session, None, Misc;
    Prepare = "prepare", Session, None, Misc;
    Execute = "execute", Session, None, Misc;
    Deallocate = "deallocate", Session, None, Misc;
    Begin = "begin", Tcl, None, Misc;
    Commit = "commit", Tcl, None, Misc;
    Rollback = "rollback", Tcl, None, Misc;
    Savepoint = "savepoint", Tcl, None, Misc;
    Release = "release", Tcl, None, Misc;
    RollbackToSavepoint = "rollback_to_savepoint", Tcl, None, Misc;
    PrepareTransaction = "prepare_transaction", Tcl, None, Misc;
    CommitPrepared = "commit_prepared", Tcl, None, Misc;
    RollbackPrepared = "rollback_prepared", Tcl, None, Misc;
    SetTransaction = "set_transaction", Tcl, None, Misc;
    SetConstraints = "set_constraints", Tcl, None, Misc;
    Set = "set", Session, None, MiscSet;
    Reset = "reset", Session, None, MiscSet;
    Show = "show", Session, None, Misc;
    Discard = "discard", Session, None, Misc;
    Listen = "listen", Session, None, Misc;
    Notify = "notify", Session, None, Misc;
    Unlisten = "unlisten", Session, None, Misc;
    Load = "load", Utility, None, Misc;
    Call = "call", Utility, None, Function;
    Do = "do", Utility, None, Function;
    Vacuum = "vacuum", Utility, None, Misc;
    Analyze = "analyze", Utility, None, Misc;
    Cluster = "cluster", Utility, None, Misc;
    Reindex = "reindex", Utility, None, Misc;
    Checkpoint = "checkpoint", Utility, None, Misc;
    Lock = "lock", Utility, None, Misc;
    AlterSystem = "alter_system", Utility, None, Misc;
    Grant = "grant", Dcl, None, Role;
    Revoke = "revoke", Dcl, None, Role;
    GrantRole = "grant_role", Dcl, None, Role;
    RevokeRole = "revoke_role", Dcl, None, Role;
    CreateRole = "create_role", Dcl, None, Role;
    AlterRole = "alter_role", Dcl, None, Role;
    DropRole = "drop_role", Dcl, None, Role;
    AlterDefaultPrivileges = "alter_default_privileges", Dcl, None, Role;
    Comment = "comment", Ddl, None, Ddl;
    SecurityLabel = "security_label", Ddl, None, Ddl;
    RefreshMaterializedView = "refresh_materialized_view", Ddl, None, Ddl;
    ImportForeignSchema = "import_foreign_schema", Ddl, None, Ddl;
    ReassignOwned = "reassign_owned", Ddl, None, Ddl;
    DropOwned = "drop_owned", Ddl, None, Ddl;
    CreateTable = "create_table", Ddl, None, Ddl;
    AlterTable = "alter_table", Ddl, None, Ddl;
    DropTable = "drop_table", Ddl, None, Ddl;
    CreateIndex = "create_index", Ddl, None, Ddl;
    AlterIndex = "alter_index", Ddl, None, Ddl;
    DropIndex = "drop_index", Ddl, None, Ddl;
    CreateSequence = "create_sequence", Ddl, None, Ddl;
    AlterSequence = "alter_sequence", Ddl, None, Ddl;
    DropSequence = "drop_sequence", Ddl, None, Ddl;
    CreateView = "create_view", Ddl, None, Ddl;
    AlterView = "alter_view", Ddl, None, Ddl;
    DropView = "drop_view", Ddl, None, Ddl;
    CreateMaterializedView = "create_materialized_view", Ddl, None, Ddl;
    AlterMaterializedView = "alter_materialized_view", Ddl, None, Ddl;
    DropMaterializedView = "drop_materialized_view", Ddl, None, Ddl;
    CreateForeignTable = "create_foreign_table", Ddl, None, Ddl;
    AlterForeignTable = "alter_foreign_table", Ddl, None, Ddl;
    DropForeignTable = "drop_foreign_table", Ddl, None, Ddl;
    CreateSchema = "create_schema", Ddl, None, Ddl;
    AlterSchema = "alter_schema", Ddl, None, Ddl;
    DropSchema = "drop_schema", Ddl, None, Ddl;
    CreateDatabase = "create_database", Ddl, None, Ddl;
    AlterDatabase = "alter_database", Ddl, None, Ddl;
    DropDatabase = "drop_database", Ddl, None, Ddl;
    CreateFunction = "create_function", Ddl, None, Ddl;
    AlterFunction = "alter_function", Ddl, None, Ddl;
    DropFunction = "drop_function", Ddl, None, Ddl;
    CreateProcedure = "create_procedure", Ddl, None, Ddl;
    AlterProcedure = "alter_procedure", Ddl, None, Ddl;
    DropProcedure = "drop_procedure", Ddl, None, Ddl;
    AlterRoutine = "alter_routine", Ddl, None, Ddl;
    DropRoutine = "drop_routine", Ddl, None, Ddl;
    CreateAggregate = "create_aggregate", Ddl, None, Ddl;
    AlterAggregate = "alter_aggregate", Ddl, None, Ddl;
    DropAggregate = "drop_aggregate", Ddl, None, Ddl;
    CreateOperator = "create_operator", Ddl, None, Ddl;
    AlterOperator = "alter_operator", Ddl, None, Ddl;
    DropOperator = "drop_operator", Ddl, None, Ddl;
    CreateOperatorClass = "create_operator_class", Ddl, None, Ddl;
    AlterOperatorClass = "alter_operator_class", Ddl, None, Ddl;
    DropOperatorClass = "drop_operator_class", Ddl, None, Ddl;
    CreateOperatorFamily = "create_operator_family", Ddl, None, Ddl;
    AlterOperatorFamily = "alter_operator_family", Ddl, None, Ddl;
    DropOperatorFamily = "drop_operator_family", Ddl, None, Ddl;
    CreateType = "create_type", Ddl, None, Ddl;
    AlterType = "alter_type", Ddl, None, Ddl;
    DropType = "drop_type", Ddl, None, Ddl;
    CreateDomain = "create_domain", Ddl, None, Ddl;
    AlterDomain = "alter_domain", Ddl, None, Ddl;
    DropDomain = "drop_domain", Ddl, None, Ddl;
    CreateCollation = "create_collation", Ddl, None, Ddl;
    AlterCollation = "alter_collation", Ddl, None, Ddl;
    DropCollation = "drop_collation", Ddl, None, Ddl;
    CreateConversion = "create_conversion", Ddl, None, Ddl;
    AlterConversion = "alter_conversion", Ddl, None, Ddl;
    DropConversion = "drop_conversion", Ddl, None, Ddl;
    CreateExtension = "create_extension", Ddl, None, Ddl;
    AlterExtension = "alter_extension", Ddl, None, Ddl;
    DropExtension = "drop_extension", Ddl, None, Ddl;
    CreateForeignDataWrapper = "create_foreign_data_wrapper", Ddl, None, Ddl;
    AlterForeignDataWrapper = "alter_foreign_data_wrapper", Ddl, None, Ddl;
    DropForeignDataWrapper = "drop_foreign_data_wrapper", Ddl, None, Ddl;
    CreateServer = "create_server", Ddl, None, Ddl;
    AlterServer = "alter_server", Ddl, None, Ddl;
    DropServer = "drop_server", Ddl, None, Ddl;
    CreateUserMapping = "create_user_mapping", Ddl, None, Ddl;
    AlterUserMapping = "alter_user_mapping", Ddl, None, Ddl;
    DropUserMapping = "drop_user_mapping", Ddl, None, Ddl;
    CreateLanguage = "create_language", Ddl, None, Ddl;
    AlterLanguage = "alter_language", Ddl, None, Ddl;
    DropLanguage = "drop_language", Ddl, None, Ddl;
    CreatePolicy = "create_policy", Ddl, None, Ddl;
    AlterPolicy = "alter_policy", Ddl, None, Ddl;
    DropPolicy = "drop_policy", Ddl, None, Ddl;
    CreatePublication = "create_publication", Ddl, None, Ddl;
    AlterPublication = "alter_publication", Ddl, None, Ddl;
    DropPublication = "drop_publication", Ddl, None, Ddl;
    CreateSubscription = "create_subscription", Ddl, None, Ddl;
    AlterSubscription = "alter_subscription", Ddl, None, Ddl;
    DropSubscription = "drop_subscription", Ddl, None, Ddl;
    CreateRule = "create_rule", Ddl, None, Ddl;
    AlterRule = "alter_rule", Ddl, None, Ddl;
    DropRule = "drop_rule", Ddl, None, Ddl;
    CreateTrigger = "create_trigger", Ddl, None, Ddl;
    AlterTrigger = "alter_trigger", Ddl, None, Ddl;
    DropTrigger = "drop_trigger", Ddl, None, Ddl;
    CreateEventTrigger = "create_event_trigger", Ddl, None, Ddl;
    AlterEventTrigger = "alter_event_trigger", Ddl, None, Ddl;
    DropEventTrigger = "drop_event_trigger", Ddl, None, Ddl;
    CreateTextSearchParser = "create_text_search_parser", Ddl, None, Ddl;
    AlterTextSearchParser = "alter_text_search_parser", Ddl, None, Ddl;
    DropTextSearchParser = "drop_text_search_parser", Ddl, None, Ddl;
    CreateTextSearchDictionary = "create_text_search_dictionary", Ddl, None, Ddl;
    AlterTextSearchDictionary = "alter_text_search_dictionary", Ddl, None, Ddl;
    DropTextSearchDictionary = "drop_text_search_dictionary", Ddl, None, Ddl;
    CreateTextSearchTemplate = "create_text_search_template", Ddl, None, Ddl;
    AlterTextSearchTemplate = "alter_text_search_template", Ddl, None, Ddl;
    DropTextSearchTemplate = "drop_text_search_template", Ddl, None, Ddl;
    CreateTextSearchConfiguration = "create_text_search_configuration", Ddl, None, Ddl;
    AlterTextSearchConfiguration = "alter_text_search_configuration", Ddl, None, Ddl;
    DropTextSearchConfiguration = "drop_text_search_configuration", Ddl, None, Ddl;
    CreateTablespace = "create_tablespace", Ddl, None, Ddl;
    AlterTablespace = "alter_tablespace", Ddl, None, Ddl;
    DropTablespace = "drop_tablespace", Ddl, None, Ddl;
    CreateCast = "create_cast", Ddl, None, Ddl;
    DropCast = "drop_cast", Ddl, None, Ddl;
    CreateTransform = "create_transform", Ddl, None, Ddl;
    DropTransform = "drop_transform", Ddl, None, Ddl;
    CreateAccessMethod = "create_access_method", Ddl, None, Ddl;
    DropAccessMethod = "drop_access_method", Ddl, None, Ddl;
    CreateStatistics = "create_statistics", Ddl, None, Ddl;
    AlterStatistics = "alter_statistics", Ddl, None, Ddl;
    DropStatistics = "drop_statistics", Ddl, None, Ddl;
    AlterLargeObject = "alter_large_object", Ddl, None, Ddl;
    Unknown = "unknown", Unknown, None, Misc;
}

impl Kind {
    /// SELECT, INSERT, UPDATE, DELETE, MERGE and COPY: the statements that
    /// read or write table rows.
    pub fn is_dml(self) -> bool {
        matches!(
            self,
            Kind::Select
                | Kind::Insert
                | Kind::Update
                | Kind::Delete
                | Kind::Merge
                | Kind::CopyFrom
                | Kind::CopyTo
        )
    }
}

impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
