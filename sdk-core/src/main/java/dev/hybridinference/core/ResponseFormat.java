package dev.hybridinference.core;

import java.util.Objects;

/**
 * The shape the model's answer must take.
 *
 * @param type plain text, any JSON object, or JSON matching a schema
 * @param schemaName the schema's name, for {@link Type#JSON_SCHEMA}
 * @param schemaJson the JSON Schema as JSON text, for {@link Type#JSON_SCHEMA}
 */
public record ResponseFormat(Type type, String schemaName, String schemaJson) {
    /** The kinds of output format. */
    public enum Type {
        /** Free text (the default). */
        TEXT,
        /** A JSON object of any shape. */
        JSON_OBJECT,
        /** A JSON value that matches {@link #schemaJson()}. */
        JSON_SCHEMA
    }

    /** Free text. */
    public static final ResponseFormat TEXT = new ResponseFormat(Type.TEXT, null, null);

    /** Any JSON object. */
    public static final ResponseFormat JSON_OBJECT = new ResponseFormat(Type.JSON_OBJECT, null, null);

    /** Checks that a schema format names its schema. */
    public ResponseFormat {
        Objects.requireNonNull(type, "type");
        if (type == Type.JSON_SCHEMA && (schemaJson == null || schemaJson.isBlank())) {
            throw new IllegalArgumentException("a JSON_SCHEMA response format needs its schema");
        }
        if (type == Type.JSON_SCHEMA && (schemaName == null || schemaName.isBlank())) {
            schemaName = "response";
        }
    }

    /** JSON that must match {@code schemaJson}. */
    public static ResponseFormat jsonSchema(String name, String schemaJson) {
        return new ResponseFormat(Type.JSON_SCHEMA, name, schemaJson);
    }
}
