-- fragment: the columns that end the SELECT of an event feed, after its own: who acted
--   (actor_*), where from ({{ client_columns }}), Okta's message, the severity and every
--   target, and the ingest_seq that late columns and filter/q read: {{ event_columns }}
actor_id, actor_type, actor_login, actor_name,
       {{ client_columns }},
       display_message, severity, targets,
       ingest_seq AS _seq
