-- Plugin catalog metadata, extension kind and the parsed entity ref (EnrichedEvent v2).
ALTER TABLE {database}.events
    ADD COLUMN IF NOT EXISTS plugin_known Bool DEFAULT false AFTER plugin_id,
    ADD COLUMN IF NOT EXISTS plugin_title LowCardinality(String) DEFAULT '' AFTER plugin_known,
    ADD COLUMN IF NOT EXISTS plugin_owner LowCardinality(String) DEFAULT '' AFTER plugin_title,
    ADD COLUMN IF NOT EXISTS plugin_lifecycle LowCardinality(String) DEFAULT '' AFTER plugin_owner,
    ADD COLUMN IF NOT EXISTS plugin_package LowCardinality(String) DEFAULT '' AFTER plugin_lifecycle,
    ADD COLUMN IF NOT EXISTS plugin_category LowCardinality(String) DEFAULT '' AFTER plugin_package,
    ADD COLUMN IF NOT EXISTS extension_kind LowCardinality(String) DEFAULT '' AFTER extension,
    ADD COLUMN IF NOT EXISTS entity_kind LowCardinality(String) DEFAULT '' AFTER entity_ref,
    ADD COLUMN IF NOT EXISTS entity_namespace LowCardinality(String) DEFAULT '' AFTER entity_kind,
    ADD COLUMN IF NOT EXISTS entity_name String DEFAULT '' AFTER entity_namespace;
