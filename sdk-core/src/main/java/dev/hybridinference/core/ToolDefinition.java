package dev.hybridinference.core;

import java.util.Objects;

/**
 * A function the model may call.
 *
 * @param name the function's name, as the model will use it
 * @param description what the function does, for the model to decide when to call it
 * @param parametersJsonSchema the JSON Schema of the arguments, as JSON text
 */
public record ToolDefinition(String name, String description, String parametersJsonSchema) {
    /** Checks that the name and schema are present; the description may be empty. */
    public ToolDefinition {
        Objects.requireNonNull(name, "name");
        if (name.isBlank()) {
            throw new IllegalArgumentException("tool name must not be blank");
        }
        description = description == null ? "" : description;
        Objects.requireNonNull(parametersJsonSchema, "parametersJsonSchema");
    }
}
