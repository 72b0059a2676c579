package dev.hybridinference.otel;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.spi.ConfigNode;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Reads what the {@code otel} and {@code micrometer} listener sections share: {@code tags}, the request tags
 * that become metric attributes, and {@code capacity}, the providers whose capacity gauges to add.
 * Package-private.
 */
final class ListenerOptions {
    private ListenerOptions() {}

    /** The {@code tags} list, each checked; empty when absent. */
    static List<String> tags(ConfigNode section) {
        List<String> out = new ArrayList<>();
        Set<String> seen = new LinkedHashSet<>();
        List<ConfigNode> items = section.list("tags");
        for (ConfigNode item : items) {
            String t = text(item, "a request tag name such as tenant");
            try {
                Facts.checkTags(List.of(t));
            } catch (IllegalArgumentException e) {
                throw new ConfigurationException(
                        item.path(),
                        "expected a tag name of letters, digits, '.', '_' or '-', starting with a letter or"
                                + " digit, at most " + Facts.MAX_TAG_NAME + " characters, got \"" + shorten(t)
                                + "\"");
            }
            if (!seen.add(t)) {
                throw new ConfigurationException(item.path(), "tag \"" + t + "\" is listed twice");
            }
            out.add(t);
        }
        return out;
    }

    /** The {@code capacity} list of provider ids; empty when absent. */
    static List<String> capacity(ConfigNode section) {
        List<String> out = new ArrayList<>();
        for (ConfigNode item : section.list("capacity")) {
            String id = text(item, "a provider id");
            if (id.isBlank()) {
                throw new ConfigurationException(item.path(), "expected a provider id, got an empty value");
            }
            if (!out.contains(id)) {
                out.add(id);
            }
        }
        return out;
    }

    private static String text(ConfigNode item, String expected) {
        if (item.isObject()) {
            throw new ConfigurationException(item.path(), "expected " + expected + ", got a mapping");
        }
        try {
            return item.text();
        } catch (ConfigurationException e) {
            throw new ConfigurationException(item.path(), "expected " + expected + ", got " + kind(e));
        }
    }

    private static String kind(ConfigurationException e) {
        String m = e.getMessage();
        int at = m.lastIndexOf("got ");
        return at < 0 ? "something else" : m.substring(at + 4);
    }

    private static String shorten(String t) {
        return t.length() > 40 ? t.substring(0, 40) + "..." : t;
    }
}
