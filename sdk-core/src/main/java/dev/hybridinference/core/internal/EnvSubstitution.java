package dev.hybridinference.core.internal;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.spi.ConfigNode;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * Resolves {@code ${VAR}} and {@code ${VAR:-default}} in every string value of a parsed document;
 * <code>$${</code> stands for a literal <code>${</code>. Substitution happens after parsing, so a value can never change
 * the document's structure. Internal: not part of the public API.
 */
public final class EnvSubstitution {
    private static final Pattern NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_.]*");

    private EnvSubstitution() {}

    /**
     * A copy of {@code node} (nested maps, lists and single values) with every string resolved; maps
     * and lists are copied, other values kept. {@code path} names the node in errors.
     *
     * @throws ConfigurationException for an unset variable, a bad reference, or nesting deeper than
     *     {@link ConfigNode#MAX_DEPTH} (which also ends a map that contains itself)
     */
    public static Object resolve(Object node, String path, Function<String, String> env) {
        return resolve(node, path, env, 1);
    }

    private static Object resolve(Object node, String path, Function<String, String> env, int depth) {
        if (node instanceof String) {
            String text = (String) node;
            return text.contains("$") ? substitute(text, path, env) : text;
        }
        boolean container = node instanceof Map || node instanceof Collection || node instanceof Object[];
        if (container && depth > ConfigNode.MAX_DEPTH) {
            throw new ConfigurationException(path, "nested deeper than " + ConfigNode.MAX_DEPTH + " levels");
        }
        if (node instanceof Map) {
            Map<Object, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) node).entrySet()) {
                String key = String.valueOf(e.getKey());
                String childPath = path.isEmpty() ? key : path + "." + key;
                out.put(e.getKey(), resolve(e.getValue(), childPath, env, depth + 1));
            }
            return out;
        }
        if (node instanceof Collection || node instanceof Object[]) {
            Collection<?> items = node instanceof Object[] ? List.of((Object[]) node) : (Collection<?>) node;
            List<Object> out = new ArrayList<>(items.size());
            int i = 0;
            for (Object item : items) {
                out.add(resolve(item, path + "[" + i++ + "]", env, depth + 1));
            }
            return out;
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
                if (name.length() > 256 || !NAME.matcher(name).matches()) {
                    throw new ConfigurationException(
                            path,
                            "\"" + (name.length() > 60 ? name.substring(0, 60) + "..." : name)
                                    + "\" is not a valid environment variable name");
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
