from __future__ import annotations

import pytest

from harma.data import DataError, clean_caption, load_eval_annotations, load_train_annotations


@pytest.mark.parametrize("text, expected", [
    ("A Big, Red. Car!", "a big red car"),
    ("There're two boats", "therere two boats"),
    ('he said "Stop" (now) *here* #1: yes; ok~ fine?', "he said stop now here 1 yes ok fine"),
    ("left-hand/right", "left hand right"),
    ("a--b//c - d", "a b c d"),
    ("  many   \t trees \n here  ", "many trees here"),
    ("ÉCOLE Near", "école near"),
])
def test_clean_caption_cases(text, expected):
    assert clean_caption(text) == expected


@pytest.mark.parametrize("char", list(",.'!?\"()*#:;~"))
def test_clean_caption_drops_each_character(char):
    assert clean_caption(f"ab{char}cd {char}ef") == "abcd ef"


@pytest.mark.parametrize("char", ["-", "/"])
def test_clean_caption_splits_on_dash_and_slash(char):
    assert clean_caption(f"ab{char}cd") == "ab cd"


def test_clean_caption_keeps_first_max_words():
    words = [f"w{i}" for i in range(40)]
    assert clean_caption(" ".join(words)) == " ".join(words[:30])
    assert clean_caption("one, two - three four", max_words=3) == "one two three"


@pytest.mark.parametrize("text", ["", "   ", ".,!?", "- / -", "()"])
def test_clean_caption_empty_is_an_error(text):
    with pytest.raises(DataError, match="empty after cleaning"):
        clean_caption(text, where="x.json: entry 4")
    with pytest.raises(DataError, match="x.json: entry 4"):
        clean_caption(text, where="x.json: entry 4")


def _train_entry(caption, image, image_id, label=0, **extra):
    return {"caption": caption, "image": image, "image_id": image_id, "label_name": f"c{label}", "label": label,
            **extra}


def test_load_train_format(write_json, tmp_path):
    entries = [_train_entry("A Boat.", "x.tif", "img-a", 3), _train_entry("Two boats", "x.tif", "img-a", 3),
               _train_entry("Tree", "y.tif", 7, 0), _train_entry("A tree-line", "y.tif", 7, 0),
               _train_entry("Road", "z.tif", "img-b", 5)]
    path = write_json(tmp_path / "train.json", entries)
    ann = load_train_annotations(path)
    assert ann.images == ["x.tif", "y.tif", "z.tif"]
    assert ann.captions == ["a boat", "two boats", "tree", "a tree line", "road"]
    assert ann.caption_image == [0, 0, 1, 1, 2]
    assert ann.labels == [3, 3, 0, 0, 5]
    assert ann.label_names == {3: "c3", 0: "c0", 5: "c5"}
    assert ann.n_classes == 6
    assert ann.origins == [f"{path} entry 0", f"{path} entry 2", f"{path} entry 4"]


def test_load_train_without_labels(write_json, tmp_path):
    path = write_json(tmp_path / "t.json", [{"caption": "a", "image": "x", "image_id": 1}])
    ann = load_train_annotations(path)
    assert ann.labels == [-1] and ann.n_classes == 0


def test_load_eval_format(write_json, tmp_path):
    entries = [{"image": "p.tif", "caption": ["One.", "Two", "Three", "Four", "Five!"], "label": 2},
               {"image": "q.tif", "caption": ["six", "Seven/eight"]},
               {"image": "r.tif", "caption": ["nine"], "image_id": 4}]
    ann = load_eval_annotations(write_json(tmp_path / "test.json", entries))
    assert ann.images == ["p.tif", "q.tif", "r.tif"]
    assert ann.captions == ["one", "two", "three", "four", "five", "six", "seven eight", "nine"]
    assert ann.img2txt == [[0, 1, 2, 3, 4], [5, 6], [7]]
    assert ann.txt2img == [0, 0, 0, 0, 0, 1, 1, 2]


def test_max_words_passed_through(write_json, tmp_path):
    path = write_json(tmp_path / "v.json", [{"image": "p", "caption": ["a b c d"]}])
    assert load_eval_annotations(path, max_words=2).captions == ["a b"]


@pytest.mark.parametrize("entries, match", [
    ([_train_entry("ok", "x", 1), {"image": "x", "image_id": 1, "label": 0}], r"entry 1: missing key 'caption'"),
    ([_train_entry("ok", "x", 1), {"caption": "c", "image_id": 1, "label": 0}], r"entry 1: missing key 'image'"),
    ([{"caption": "c", "image": "x", "label": 0}], r"entry 0: missing key 'image_id'"),
    ([_train_entry("ok", "x", 1.5)], r"entry 0: key 'image_id': expected an int or string"),
    ([_train_entry("ok", "x", True)], r"entry 0: key 'image_id'"),
    ([_train_entry(["list"], "x", 1)], r"entry 0: key 'caption': expected a string"),
    ([_train_entry("ok", 3, 1)], r"entry 0: key 'image': expected an image path"),
    ([_train_entry("ok", "x", 1), _train_entry("ok", "x", 1, label="5")], r"entry 1: key 'label'"),
    ([_train_entry("ok", "x", 1), _train_entry("ok", "x", 1, label=-2)], r"entry 1: key 'label'"),
    ([_train_entry("ok", "x", 1), {"caption": "c", "image": "x", "image_id": 1}], r"entry 1: missing key 'label'"),
    ([_train_entry("ok", "x", 1), _train_entry("ok", "other", 1)], r"entry 1: key 'image': image_id 1"),
    ([_train_entry("ok", "x", 1), _train_entry(" ?! ", "x", 1)], r"entry 1: key 'caption'.*empty after cleaning"),
    (["not an object"], r"entry 0: expected an object"),
])
def test_train_errors_name_file_entry_and_key(write_json, tmp_path, entries, match):
    path = write_json(tmp_path / "train.json", entries)
    with pytest.raises(DataError, match=match) as info:
        load_train_annotations(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("entries, match", [
    ([{"image": "p", "caption": "a string"}], r"entry 0: key 'caption': expected a list"),
    ([{"image": "p", "caption": ["a"]}, {"image": "q", "caption": []}], r"entry 1: key 'caption': expected a non"),
    ([{"image": "p", "caption": ["a"]}, {"caption": ["b"]}], r"entry 1: missing key 'image'"),
    ([{"image": "p", "caption": ["a"]}, {"image": "q", "caption": ["b", "c", "d", "..."]}],
     r"entry 1: key 'caption'\[3\].*empty after cleaning"),
    ([{"image": "p", "caption": ["a", 5]}], r"entry 0: key 'caption'\[1\]: caption: expected a string"),
])
def test_eval_errors_name_file_entry_and_key(write_json, tmp_path, entries, match):
    path = write_json(tmp_path / "val.json", entries)
    with pytest.raises(DataError, match=match) as info:
        load_eval_annotations(path)
    assert str(path) in str(info.value)


def test_bad_json_and_missing_file(write_json, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image": "x",}')
    with pytest.raises(DataError, match=r"bad\.json: not valid json .*line 1"):
        load_eval_annotations(bad)
    obj = write_json(tmp_path / "obj.json", {"image": "x"})
    with pytest.raises(DataError, match="expected a json list"):
        load_train_annotations(obj)
    with pytest.raises(DataError, match="nope.json: annotation file not found"):
        load_train_annotations(tmp_path / "nope.json")
