"""Clojure writes memory.edn, garrison migrates and exports it, Clojure reads both as the same data.

Two Clojure processes (startup is the cost): one prints a legacy map with every
kind of value with ``pr-str``; after ``garrison migrate`` and ``garrison
export`` the other reads both files with ``clojure.edn`` and compares them
strictly: equal values *and* equal kinds (a vector is not a list, ``1`` is not
``1N`` or ``1.0``, ``1.50M`` is not ``1.5M``), map keys and set elements
included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from garrison.cli import main
from tests._clojure import require_clojure, run_clojure

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.clojure

WRITE = r"""
(def data
  {:session/abc {:user :user/u1
                 :id #uuid "6f1b2c1e-8a5f-4d1e-9f5e-2b7f1f0c9a11"
                 :started #inst "2024-05-01T10:00:00.250-00:00"
                 :tags #{:a :b "c" 1}
                 :messages [{:role :user :text "héllo \"quoted\"\n\ttab 😀"}
                            {:role :assistant :text "" :tokens 12}]}
   :presence/s-1 {:online? true :last-seen nil :score 0.25 :neg -0.0}
   :collab-session/c1 {:peers [] :empty-map {} :empty-set #{} :empty-list ()}
   :project/p1 {:name "Zürich" :ratio 22/7 :big 12345678901234567890N :one-n 1N
                :dec 1.50M :exp 1E300 :long 9223372036854775807
                :inf ##Inf :ninf ##-Inf :nan ##NaN}
   :learning/r1 {:list (list 1 :two "three" [4]) :chars [\a \newline \space \u00e9]
                 :symbols ['foo 'ns/bar] :nested {[1 2] "vector key" {:m 1} #{:map-key}
                                                  7 "int key" "s" "string key" nil "nil key"}}
   :learning/tag-index {:user/id 1 :user/name "namespaced map"}
   :learning/index (tagged-literal 'my/tag [1 {:x 2}])
   :embed-token/abc123 [0.1 0.2 0.30000000000000004]
   :webhook/w1 {:url "https://example.org/hook?a=1&b=2" :events #{:push :pull}}
   :cache/deep [[[[[[[[[[:deep]]]]]]]]]]
   "plain-string-key" "a string key"
   42 "an integer key"})
(binding [*print-namespace-maps* true]
  (spit (first *command-line-args*) (pr-str data) :encoding "UTF-8"))
(println "written")
"""

COMPARE = r"""
(require '[clojure.edn :as edn])
(defn read-file [f] (edn/read-string {:default tagged-literal} (slurp f :encoding "UTF-8")))
(defn kind [x]
  (cond (map? x) :map (set? x) :set (vector? x) :vector (seq? x) :list
        (nil? x) :nil (instance? clojure.lang.TaggedLiteral x) :tagged :else (class x)))
(declare same?)
(defn twin [coll x] (some #(when (= % x) [%]) coll))  ; [match]: nil may be a key
(defn same? [a b]
  (and (= (kind a) (kind b))
       (cond
         (map? a) (and (= (count a) (count b))
                       (every? (fn [[k v]] (let [[k2 :as found] (twin (keys b) k)]
                                             (and found (same? k k2) (same? v (get b k2)))))
                               a))
         (set? a) (and (= (count a) (count b))
                       (every? #(let [[x :as found] (twin b %)] (and found (same? % x))) a))
         (or (vector? a) (seq? a)) (and (= (count a) (count b)) (every? true? (map same? a b)))
         (nil? a) true
         (instance? clojure.lang.TaggedLiteral a) (and (= (:tag a) (:tag b))
                                                       (same? (:form a) (:form b)))
         ;; .equals: NaN equals NaN, 1.50M differs from 1.5M, a Long from a BigInt.
         :else (.equals a b))))
(let [[original exported] (map read-file *command-line-args*)]
  (if (same? original exported)
    (println "same" (count original))
    (do (doseq [k (keys original)]
          (when-not (same? (get original k) (get exported k))
            (println "DIFFERENT" (pr-str k) (pr-str (get original k))
                     (pr-str (get exported k)))))
        (println "missing" (remove #(twin (keys exported) %) (keys original)))
        (System/exit 1))))
"""


def test_clojure_pr_str_file_survives_migrate_and_export_as_the_same_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_clojure()
    original = tmp_path / "memory.edn"
    db = tmp_path / "garrison.db"
    exported = tmp_path / "exported.edn"
    assert run_clojure(WRITE, original) == "written\n"

    assert main(["migrate", "--edn", str(original), "--db", str(db), "--batch-size", "3"]) == 0
    migrated = capsys.readouterr().out
    assert "keys: 12 selected of 12 in the file; written 12" in migrated
    assert "by kind: session 3, project 1, learning 1, cache 5, index 2" in migrated
    assert main(["validate", "--edn", str(original), "--db", str(db)]) == 0
    assert main(["export", "--db", str(db), "--edn", str(exported)]) == 0
    capsys.readouterr()

    assert run_clojure(COMPARE, original, exported) == "same 12\n"
    # And the exported file migrates into the same database without a change.
    assert main(["migrate", "--edn", str(exported), "--db", str(db)]) == 0
    assert "written 0, unchanged 12" in capsys.readouterr().out
