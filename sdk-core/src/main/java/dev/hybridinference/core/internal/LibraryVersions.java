package dev.hybridinference.core.internal;

import java.io.IOException;
import java.net.URL;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Checks, once, that the Jackson and OkHttp on the classpath are versions the SDK works with, so that a
 * dependency conflict fails when the first client is built or the first configuration loaded, with a
 * message naming the library, the version found and how to look for the culprit, instead of a {@code
 * NoSuchMethodError} in the middle of a call.
 *
 * <p>Why these rules:
 *
 * <ul>
 *   <li>Jackson 2.15 is the oldest the SDK links against: the configuration reader sets {@code
 *       StreamReadConstraints} through {@code YAMLFactory.builder()}, both new in 2.15. The whole test
 *       suite passes on 2.15.2.
 *   <li>jackson-databind and jackson-dataformat-yaml call into jackson-core of their own minor version, so
 *       an older jackson-core beside them breaks at run time. This is what declaring an old jackson-databind
 *       in an application does: Maven picks that jackson-databind's jackson-core and keeps our newer
 *       jackson-dataformat-yaml.
 *   <li>OkHttp 4 ({@code com.squareup.okhttp3:okhttp}) and OkHttp 5 ({@code okhttp-jvm}) have different
 *       artifact ids, so Maven keeps both and whichever comes first on the classpath wins, class by class.
 *       A second copy of any of these libraries is refused for the same reason.
 * </ul>
 *
 * <p>The check throws {@link IllegalStateException}, not an {@code InferenceException} or a {@code
 * ConfigurationException}: the fault is in how the application was assembled, not in a call or in a
 * configuration document, no retry or other configuration can help, and it is raised from the static
 * initializer of the class that runs it, where the JVM wraps it in an {@link ExceptionInInitializerError}
 * whose cause carries the message. {@code -Dhybridinference.libraryCheck.disable=true} turns the check off
 * for class loaders it misreads.
 *
 * <p>Internal: not part of the public API. Thread-safe (the result is computed once, when the class is
 * initialized).
 */
public final class LibraryVersions {
    /** The system property that turns the check off when set to {@code true}. */
    public static final String DISABLE_PROPERTY = "hybridinference.libraryCheck.disable";

    /** The oldest Jackson 2 minor version the SDK works with (2.15). */
    static final int JACKSON_MIN_MINOR = 15;

    /** The oldest OkHttp major version the SDK works with (5). */
    static final int OKHTTP_MIN_MAJOR = 5;

    private static final String JACKSON_TREE = "mvn dependency:tree -Dincludes=com.fasterxml.jackson.core";
    private static final String JACKSON_ALL_TREE =
            "mvn dependency:tree -Dincludes=com.fasterxml.jackson.core,com.fasterxml.jackson.dataformat";
    private static final String OKHTTP_TREE = "mvn dependency:tree -Dincludes=com.squareup.okhttp3";

    private static final String PROBLEM = Boolean.getBoolean(DISABLE_PROPERTY) ? null : findProblem();

    private LibraryVersions() {}

    /**
     * Throws when the libraries found on the classpath are not ones the SDK works with; returns at once
     * otherwise. Cheap: the classpath is inspected once per class loader.
     *
     * @throws IllegalStateException naming the library, the version found and what to do
     */
    public static void check() {
        if (PROBLEM != null) {
            throw new IllegalStateException(PROBLEM);
        }
    }

    /**
     * What one library looks like on the classpath.
     *
     * @param name the artifact's name in messages, e.g. {@code jackson-databind}
     * @param version its version as the library reports it, or null when it is missing or too old to say
     * @param copies where each copy of a class of it was found; more than one means two jars hold it
     */
    record Found(String name, String version, List<String> copies) {
        Found {
            copies = List.copyOf(copies);
        }
    }

    /** Reads the versions from the classpath of this class's class loader. */
    private static String findProblem() {
        ClassLoader cl = LibraryVersions.class.getClassLoader();
        return problem(
                find(
                        cl,
                        "jackson-core",
                        "com.fasterxml.jackson.core.json.PackageVersion",
                        "com/fasterxml/jackson/core/JsonFactory.class"),
                find(
                        cl,
                        "jackson-databind",
                        "com.fasterxml.jackson.databind.cfg.PackageVersion",
                        "com/fasterxml/jackson/databind/ObjectMapper.class"),
                find(
                        cl,
                        "jackson-dataformat-yaml",
                        "com.fasterxml.jackson.dataformat.yaml.PackageVersion",
                        "com/fasterxml/jackson/dataformat/yaml/YAMLFactory.class"),
                // OkHttp 4 has okhttp3.OkHttp.VERSION too; it is read by reflection because javac would
                // otherwise copy the constant of the OkHttp we compile against into this class.
                find(cl, "OkHttp", "okhttp3.OkHttp", "okhttp3/OkHttpClient.class"));
    }

    private static Found find(ClassLoader cl, String name, String versionHolder, String marker) {
        String version = null;
        try {
            Object v =
                    Class.forName(versionHolder, true, cl).getField("VERSION").get(null);
            version = v == null ? null : v.toString();
        } catch (ReflectiveOperationException | LinkageError | RuntimeException e) {
            // Missing, or too old to have the holder: reported as "not found" below.
        }
        Set<String> copies = new LinkedHashSet<>();
        try {
            Enumeration<URL> urls = cl == null ? ClassLoader.getSystemResources(marker) : cl.getResources(marker);
            while (urls.hasMoreElements()) {
                copies.add(location(urls.nextElement().toString(), marker));
            }
        } catch (IOException e) {
            // Copies cannot be counted; the version check alone applies.
        }
        return new Found(name, version, new ArrayList<>(copies));
    }

    /** The jar or directory a resource URL points into: {@code jar:file:/a/b.jar!/x/Y.class} gives /a/b.jar. */
    static String location(String url, String resource) {
        String s = url;
        int bang = s.indexOf("!/");
        if (bang >= 0) {
            s = s.substring(0, bang);
        } else if (s.endsWith(resource)) {
            s = s.substring(0, s.length() - resource.length());
        }
        for (String prefix : new String[] {"jar:", "file:"}) {
            if (s.startsWith(prefix)) {
                s = s.substring(prefix.length());
            }
        }
        return s;
    }

    /**
     * The problem with these libraries, or null when there is none: every rule is applied and each
     * finding gets a line of its own. Pure, for tests.
     */
    static String problem(Found jacksonCore, Found jacksonDatabind, Found jacksonYaml, Found okhttp) {
        List<String> problems = new ArrayList<>();
        int coreMinor = -1;
        for (Found f : List.of(jacksonCore, jacksonDatabind, jacksonYaml)) {
            String tree = f == jacksonYaml ? JACKSON_ALL_TREE : JACKSON_TREE;
            int[] v = parse(f.version());
            if (v == null) {
                problems.add("hybrid-inference needs " + f.name() + " 2." + JACKSON_MIN_MINOR
                        + " or newer on the classpath; found "
                        + (f.copies().isEmpty() ? "none" : "one that does not say its version")
                        + " (check your dependency management: " + tree + ")");
            } else if (v[0] != 2 || v[1] < JACKSON_MIN_MINOR) {
                problems.add("hybrid-inference needs " + f.name() + " 2." + JACKSON_MIN_MINOR
                        + " or newer on the classpath; found " + f.version()
                        + " (check your dependency management: " + tree + ")");
            } else if (f == jacksonCore) {
                coreMinor = v[1];
            }
        }
        if (coreMinor >= 0) {
            for (Found f : List.of(jacksonDatabind, jacksonYaml)) {
                int[] v = parse(f.version());
                if (v != null && v[0] == 2 && v[1] > coreMinor) {
                    problems.add(f.name() + " " + f.version() + " needs jackson-core 2." + v[1]
                            + " or newer, but the classpath has jackson-core " + jacksonCore.version()
                            + ": keep Jackson's modules at one version, for example by importing"
                            + " com.fasterxml.jackson:jackson-bom in dependencyManagement (check: "
                            + JACKSON_ALL_TREE + ")");
                }
            }
        }
        int[] ok = parse(okhttp.version());
        if (ok == null) {
            problems.add("hybrid-inference needs OkHttp " + OKHTTP_MIN_MAJOR
                    + ".0 or newer (com.squareup.okhttp3:okhttp-jvm) on the classpath; found "
                    + (okhttp.copies().isEmpty() ? "none" : "one too old to say its version") + " (check: "
                    + OKHTTP_TREE + ")");
        } else if (ok[0] < OKHTTP_MIN_MAJOR) {
            problems.add("hybrid-inference needs OkHttp " + OKHTTP_MIN_MAJOR
                    + ".0 or newer (com.squareup.okhttp3:okhttp-jvm) on the classpath; found " + okhttp.version()
                    + " (an OkHttp " + ok[0] + " dependency, com.squareup.okhttp3:okhttp, comes first: remove it or"
                    + " move it to " + OKHTTP_MIN_MAJOR + ".x; check: " + OKHTTP_TREE + ")");
        }
        for (Found f : List.of(jacksonCore, jacksonDatabind, jacksonYaml, okhttp)) {
            if (f.copies().size() > 1) {
                String tree = f == okhttp ? OKHTTP_TREE : JACKSON_ALL_TREE;
                problems.add(f.name() + " is on the classpath " + f.copies().size() + " times ("
                        + String.join(", ", f.copies())
                        + "): classes of different copies mix and fail at run time; keep one (check: " + tree
                        + ")");
            }
        }
        if (problems.isEmpty()) {
            return null;
        }
        return problems.size() == 1
                ? problems.get(0)
                : problems.size() + " library problems:\n  - " + String.join("\n  - ", problems);
    }

    /** Major and minor of a version like {@code 2.15.2}, {@code 2.20} or {@code 5.0.0-alpha.14}; null if none. */
    static int[] parse(String version) {
        if (version == null) {
            return null;
        }
        String[] parts = version.trim().split("[.-]", 3);
        if (parts.length < 2) {
            return null;
        }
        try {
            return new int[] {Integer.parseInt(parts[0]), Integer.parseInt(parts[1])};
        } catch (NumberFormatException e) {
            return null;
        }
    }
}
