package dev.hybridinference.core;

import java.util.Objects;

/**
 * A function call the model asked for.
 *
 * @param id the id the model gave the call; a {@link Role#TOOL} message answers it by this id
 * @param name the function's name
 * @param argumentsJson the arguments as the JSON text the model produced (not validated)
 */
public record ToolCall(String id, String name, String argumentsJson) {
    /** Checks that every part is present. */
    public ToolCall {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(argumentsJson, "argumentsJson");
    }
}
