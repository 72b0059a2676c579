package dev.hybridinference.core.internal;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import dev.hybridinference.core.ConfigurationException;
import java.util.Iterator;
import java.util.Map;
import java.util.function.Function;

/**
 * Resolves {@code ${VAR}} and {@code ${VAR:-default}} in every string value of a parsed document, in
 * place; {@code $${} stands for a literal {@code ${}. Substitution happens after parsing, so a value can
 * never change the document's structure. Internal: not part of the public API.
 */
public final class EnvSubstitution {
    private EnvSubstitution() {}

    /** Resolves every string under {@code node}; {@code path} names it in errors. */
    public static JsonNode resolve(JsonNode node, String path, Function<String, String> env) {
        if (node.isTextual()) {
            String text = node.asText();
            return text.contains("$") ? TextNode.valueOf(substitute(text, path, env)) : node;
        }
        if (node.isObject()) {
            ObjectNode obj = (ObjectNode) node;
            for (Iterator<Map.Entry<String, JsonNode>> it = obj.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String childPath = path.isEmpty() ? e.getKey() : path + "." + e.getKey();
                e.setValue(resolve(e.getValue(), childPath, env));
            }
        } else if (node.isArray()) {
            ArrayNode arr = (ArrayNode) node;
            for (int i = 0; i < arr.size(); i++) {
                arr.set(i, resolve(arr.get(i), path + "[" + i + "]", env));
            }
        }
        return node;
    }

    /** Resolves the references in one string. */
    public static String substitute(String text, String path, Function<String, String> env) {
        StringBuilder out = new StringBuilder(text.length());
        int i = 0;
        while (i < text.length()) {
            char c = text.charAt(i);
            if (c == '$' && text.startsWith("$${", i)) {
                out.append("${");
                i += 3;
            } else if (c == '$' && text.startsWith("${", i)) {
                int end = text.indexOf('}', i + 2);
                if (end < 0) {
                    throw new ConfigurationException(
                            path, "unclosed ${ in value: expected ${NAME} or ${NAME:-default}");
                }
                String ref = text.substring(i + 2, end);
                int sep = ref.indexOf(":-");
                String name = sep < 0 ? ref : ref.substring(0, sep);
                if (!name.matches("[A-Za-z_][A-Za-z0-9_.]*")) {
                    throw new ConfigurationException(path, "\"" + name + "\" is not a valid environment variable name");
                }
                String value = env.apply(name);
                if (value == null || (sep >= 0 && value.isEmpty())) {
                    if (sep < 0) {
                        throw new ConfigurationException(
                                path,
                                "environment variable " + name + " is not set (write ${" + name
                                        + ":-default} to give a default)");
                    }
                    value = ref.substring(sep + 2);
                }
                out.append(value);
                i = end + 1;
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }
}
