"""The annotation readers on tiny copies of the real on-disk formats, quirks included."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hico_bench.data import formats
from hico_bench.errors import UserError

CLIP = dict(num_frames=10, fps=10, size=(32, 32))  # 1-s videos


def write(path: Path, text: str, newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline=newline) as f:
        f.write(text)
    return path


def assert_line_error(excinfo, filename: str, line: int) -> None:
    message = str(excinfo.value)
    assert filename in message and f"line {line}:" in message, message
    assert message.endswith("."), message


def rows_by_id(df):
    return {r.video_id: r for r in df.itertuples()}


def check_columns(df, extra=()):
    assert list(df.columns) == [*formats.LISTING_COLUMNS, *extra]
    assert str(df["label_index"].dtype) == "int64"
    for path in df["path"]:
        assert Path(path).is_absolute()


# ---------------------------------------------------------------------------------------------------------- Kinetics

K400_CSV = """label,youtube_id,time_start,time_end,split,is_cc
air drumming,AAAAAAAAAAA,10,20,train,0
hurling (sport),BBBBBBBBBBB,0,10,train,0
massaging person's head,CCCCCCCCCCC,417,427,validate,0
abseiling,DDDDDDDDDDD,5,15,val,0
"""


@pytest.fixture
def k400_label_layout(tmp_path, make_video):
    """mmaction2-style class folders: the CSV spelling, spaces->_, and the older rename with ( ) -> -."""
    videos = tmp_path / "videos"
    make_video(videos / "air drumming" / "AAAAAAAAAAA_000010_000020.mp4", **CLIP)
    make_video(videos / "hurling_-sport-" / "BBBBBBBBBBB_000000_000010.mp4", **CLIP)
    make_video(videos / "massaging_person's_head" / "CCCCCCCCCCC_000417_000427.mp4", **CLIP)
    csv = write(tmp_path / "train.csv", K400_CSV)
    return csv, videos


@pytest.mark.parametrize("layout", ["auto", "label"])
def test_kinetics_label_folders_with_spaces_parentheses_apostrophes(k400_label_layout, layout):
    csv, videos = k400_label_layout
    df = formats.read_kinetics(csv, videos, layout=layout)
    check_columns(df, extra=("time_start", "time_end"))
    rows = rows_by_id(df)
    assert list(df["video_id"]) == ["AAAAAAAAAAA", "BBBBBBBBBBB", "CCCCCCCCCCC", "DDDDDDDDDDD"]
    # Class index = sorted unique label names.
    assert {r.label: r.label_index for r in df.itertuples()} == {
        "abseiling": 0, "air drumming": 1, "hurling (sport)": 2, "massaging person's head": 3,
    }
    assert rows["AAAAAAAAAAA"].path == str(videos / "air drumming" / "AAAAAAAAAAA_000010_000020.mp4")
    assert rows["BBBBBBBBBBB"].path == str(videos / "hurling_-sport-" / "BBBBBBBBBBB_000000_000010.mp4")
    assert rows["CCCCCCCCCCC"].path == str(videos / "massaging_person's_head" / "CCCCCCCCCCC_000417_000427.mp4")
    assert [r.split for r in df.itertuples()] == ["train", "train", "val", "val"]
    assert (rows["CCCCCCCCCCC"].time_start, rows["CCCCCCCCCCC"].time_end) == (417, 427)
    # A clip that is not on disk stays listed where it is expected (the manifest step quarantines it).
    missing = Path(rows["DDDDDDDDDDD"].path)
    assert not missing.exists() and missing.name == "DDDDDDDDDDD_000005_000015.mp4"
    assert missing.parent == (videos / "abseiling" if layout == "label" else videos)
    assert (df["segments"] == "").all() and (df["parts"] == "").all()


def test_kinetics_cvdf_flat_layout_and_unlabelled_test_csv(tmp_path, make_video):
    videos = tmp_path / "k400"
    # CVDF: flat split folders, the first 11 characters of the stem are the YouTube id.
    make_video(videos / "test" / "-aB_cD1eF2g_000010_000020.mp4", **CLIP)
    make_video(videos / "test" / "EEEEEEEEEEE.mp4", **CLIP)  # stem holds only the id
    make_video(videos / "test" / "FFFFFFFFFFF_000001_000011.mp4", **CLIP)
    make_video(videos / "test" / "FFFFFFFFFFF_000030_000040.mp4", **CLIP)
    csv = write(
        tmp_path / "test.csv",
        "youtube_id,time_start,time_end,split\n"
        "-aB_cD1eF2g,10,20,test\nEEEEEEEEEEE,0,10,test\nFFFFFFFFFFF,30,40,test\nGGGGGGGGGGG,0,10,test\n",
    )
    for layout in ("cvdf", "auto"):
        df = formats.read_kinetics(csv, videos, layout=layout)
        rows = rows_by_id(df)
        assert (df["label"] == "").all() and (df["label_index"] == -1).all()
        assert (df["split"] == "test").all()
        assert rows["-aB_cD1eF2g"].path == str(videos / "test" / "-aB_cD1eF2g_000010_000020.mp4")
        assert rows["EEEEEEEEEEE"].path == str(videos / "test" / "EEEEEEEEEEE.mp4")
        # Of two files of one id, the one holding the row's start time.
        assert rows["FFFFFFFFFFF"].path == str(videos / "test" / "FFFFFFFFFFF_000030_000040.mp4")
        assert rows["GGGGGGGGGGG"].path == str(videos / "GGGGGGGGGGG_000000_000010.mp4")


def test_kinetics_flat_layout_several_csvs_and_folders(tmp_path, make_video):
    make_video(tmp_path / "train_videos" / "AAAAAAAAAAA_000010_000020.mp4", **CLIP)
    make_video(tmp_path / "val_videos" / "XXXXXXXXXXX_000000_000010.mp4", **CLIP)
    train = write(tmp_path / "train.csv", "label,youtube_id,time_start,time_end,split\nzumba,AAAAAAAAAAA,10,20,train\n")
    val = write(tmp_path / "val.csv", "label,youtube_id,time_start,time_end,split\nabseiling,XXXXXXXXXXX,0,10,val\n")
    df = formats.read_kinetics([train, val], [tmp_path / "train_videos", tmp_path / "val_videos"], layout="flat")
    rows = rows_by_id(df)
    assert rows["AAAAAAAAAAA"].label_index == 1 and rows["XXXXXXXXXXX"].label_index == 0  # one index over both CSVs
    assert rows["XXXXXXXXXXX"].path == str(tmp_path / "val_videos" / "XXXXXXXXXXX_000000_000010.mp4")
    assert list(df["split"]) == ["train", "val"]


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("label,youtube_id,time_start,time_end,split\nabseiling,AAAAAAAAAAA,1,11\n", 2, "5 comma-separated"),
        ("label,youtube_id,time_start,time_end,split\nx,A,1,11,train\nx,B,one,11,train\n", 3, "time_start"),
        ("label,youtube_id,time_start,time_end,split\nx,A,1,11,holdout\n", 2, "unknown split"),
        ("label,youtube_id,time_start,time_end,split\n\nx,A,11,1,train\n", 3, "not after"),
        ("label,youtube_id,start,end,split\nx,A,1,11,train\n", 1, "time_start"),
    ],
)
def test_kinetics_malformed_lines(tmp_path, text, line, words):
    csv = write(tmp_path / "bad.csv", text)
    (tmp_path / "v").mkdir()
    with pytest.raises(UserError) as excinfo:
        formats.read_kinetics(csv, tmp_path / "v")
    assert_line_error(excinfo, "bad.csv", line)
    assert words in str(excinfo.value)


def test_kinetics_bad_config_paths_and_layout(tmp_path):
    csv = write(tmp_path / "train.csv", K400_CSV)
    with pytest.raises(UserError, match=r"nowhere\.csv does not exist"):
        formats.read_kinetics(tmp_path / "nowhere.csv", tmp_path)
    with pytest.raises(UserError, match=r"no_videos does not exist"):
        formats.read_kinetics(csv, tmp_path / "no_videos")
    with pytest.raises(UserError, match="auto, cvdf, flat, label"):
        formats.read_kinetics(csv, tmp_path, layout="tree")


# --------------------------------------------------------------------------------------------- untrimmed Kinetics


def test_untrimmed_kinetics_any_container_one_row_per_id(tmp_path, make_video):
    videos = tmp_path / "full"
    make_video(videos / "AAAAAAAAAAA.mkv", **CLIP)
    make_video(videos / "some class" / "v_BBBBBBBBBBB.mp4", **CLIP)
    make_video(videos / "CCCCCCCCCCC.mov", **CLIP)
    make_video(videos / "CCCCCCCCCCC.mp4", **CLIP)  # .mp4 wins over .mov
    write(videos / "DDDDDDDDDDD.mp4.part", "half a download")  # not a video suffix: ignored
    csv = write(
        tmp_path / "train.csv",
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        "yoga,AAAAAAAAAAA,10,20,train,0\nyoga,AAAAAAAAAAA,40,50,train,0\n"
        "air drumming,BBBBBBBBBBB,0,10,train,0\nzumba,CCCCCCCCCCC,3,13,val,0\nzumba,DDDDDDDDDDD,0,10,train,0\n",
    )
    df = formats.read_untrimmed_kinetics(csv, videos)
    check_columns(df)
    rows = rows_by_id(df)
    assert list(df["video_id"]) == ["AAAAAAAAAAA", "BBBBBBBBBBB", "CCCCCCCCCCC", "DDDDDDDDDDD"]
    assert rows["AAAAAAAAAAA"].path == str(videos / "AAAAAAAAAAA.mkv")
    assert rows["BBBBBBBBBBB"].path == str(videos / "some class" / "v_BBBBBBBBBBB.mp4")
    assert rows["CCCCCCCCCCC"].path == str(videos / "CCCCCCCCCCC.mp4")
    assert rows["DDDDDDDDDDD"].path == str(videos / "DDDDDDDDDDD.mp4") and not Path(rows["DDDDDDDDDDD"].path).exists()
    assert [(r.label, r.label_index, r.split) for r in df.itertuples()] == [
        ("yoga", 1, "train"), ("air drumming", 0, "train"), ("zumba", 2, "val"), ("zumba", 2, "train"),
    ]


# ------------------------------------------------------------------------------------------------ 5-s segment layout

SEGMENT_LIST = (
    "--0edUL8zmA,0000000,0005000\n--0edUL8zmA,0005000,0010000\n--0edUL8zmA,0010000,0012120\n"
    "BBBBBBBBBBB,0000000,0003000\n"
)


@pytest.mark.parametrize("hacs_folder", [False, True])
def test_segments_layout_grouped_ordered_with_short_last_piece(tmp_path, make_video, hacs_folder):
    clips = tmp_path / "clip_5s"
    folder = clips / "training" if hacs_folder else clips  # HiCo: HACS pieces live in <root>/<subset>/
    for name in ["v_--0edUL8zmA_0000000_0005000", "v_--0edUL8zmA_0005000_0010000", "v_--0edUL8zmA_0010000_0012120",
                 "v_BBBBBBBBBBB_0000000_0003000"]:
        make_video(folder / f"{name}.mp4", **CLIP)
    lst = write(tmp_path / "training.txt", SEGMENT_LIST)
    csv = write(tmp_path / "k400.csv",
                "label,youtube_id,time_start,time_end,split\nsumo wrestling,--0edUL8zmA,3,13,train\n")
    df = formats.read_kinetics_segments(lst, clips, csv_path=csv)
    check_columns(df)
    rows = rows_by_id(df)
    assert list(df["video_id"]) == ["--0edUL8zmA", "BBBBBBBBBBB"]
    assert (df["split"] == "train").all()
    a = rows["--0edUL8zmA"]
    assert json.loads(a.parts) == [
        [0.0, 5.0, str(folder / "v_--0edUL8zmA_0000000_0005000.mp4")],
        [5.0, 10.0, str(folder / "v_--0edUL8zmA_0005000_0010000.mp4")],
        [10.0, 12.12, str(folder / "v_--0edUL8zmA_0010000_0012120.mp4")],
    ]
    assert a.path == str(folder / "v_--0edUL8zmA_0000000_0005000.mp4")
    assert (a.label, a.label_index) == ("sumo wrestling", 0)
    assert (rows["BBBBBBBBBBB"].label, rows["BBBBBBBBBBB"].label_index) == ("", -1)
    assert json.loads(rows["BBBBBBBBBBB"].parts) == [[0.0, 3.0, str(folder / "v_BBBBBBBBBBB_0000000_0003000.mp4")]]


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("A,0000000,0005000\nB,0000000,0005000\nA,0005000,0010000\n", 3, "grouped by video"),
        ("A,0005000,0010000\n", 1, "previous one ends at 0 ms"),
        ("A,0000000,0005000\nA,0010000,0015000\n", 2, "consecutive"),
        ("A,0000000,0002500\nA,0002500,0005000\n", 2, "not a multiple of 5 s"),
        ("A,0000000,0004000\nA,0005000,0010000\n", 2, "previous one ends"),
        ("A,0000000,0005000\nA,0005000,0011000\n", 2, "at most 5 s"),
        ("A,0000000\n", 1, "3 comma-separated"),
        ("A,0000000,00050x0\n", 1, "endms must be an integer"),
    ],
)
def test_segments_malformed_lines(tmp_path, text, line, words):
    lst = write(tmp_path / "training.txt", text)
    with pytest.raises(UserError) as excinfo:
        formats.read_kinetics_segments(lst, tmp_path)
    assert_line_error(excinfo, "training.txt", line)
    assert words in str(excinfo.value)


def test_segments_split_from_list_name(tmp_path):
    val = write(tmp_path / "validation.txt", "A,0,5000\n")
    assert set(formats.read_kinetics_segments(val, tmp_path)["split"]) == {"val"}
    odd = write(tmp_path / "pieces.txt", "A,0,5000\n")
    with pytest.raises(UserError, match="pieces.txt"):
        formats.read_kinetics_segments(odd, tmp_path)
    assert set(formats.read_kinetics_segments(odd, tmp_path, split="testing")["split"]) == {"test"}


# ---------------------------------------------------------------------------------------------------------- UCF101

CLASS_IND = "1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n3 YoYo\r\n"


@pytest.fixture
def ucf(tmp_path, make_video):
    root = tmp_path / "UCF-101"
    for rel in ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "HandstandPushups/v_HandStandPushups_g08_c01.avi",
                "HandstandPushups/v_HandStandPushups_g01_c01.avi", "YoYo/v_YoYo_g01_c01.avi"]:
        make_video(root / rel, **CLIP)
    lists = tmp_path / "ucfTrainTestlist"
    write(lists / "classInd.txt", CLASS_IND, newline="")
    # The official lists use CRLF; the second line is the sed-ed spelling some projects write.
    write(lists / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n"
          "HandstandPushups/v_HandstandPushups_g08_c01.avi 2\r\n", newline="")
    write(lists / "testlist01.txt", "HandstandPushups/v_HandStandPushups_g01_c01.avi\r\nYoYo/v_YoYo_g01_c01.avi\r\n"
          "YoYo/v_YoYo_g02_c01.avi\r\n", newline="")
    return root, lists


def test_ucf101_split1_with_handstand_quirk(ucf, tmp_path):
    root, lists = ucf
    for splits_dir in (lists, tmp_path):  # the folder itself or its parent
        df = formats.read_ucf101(root, splits_dir, split=1)
        check_columns(df)
        assert [(r.video_id, r.split, r.label, r.label_index) for r in df.itertuples()] == [
            ("v_ApplyEyeMakeup_g08_c01", "train", "ApplyEyeMakeup", 0),
            ("v_HandStandPushups_g08_c01", "train", "HandstandPushups", 1),
            ("v_HandStandPushups_g01_c01", "test", "HandstandPushups", 1),
            ("v_YoYo_g01_c01", "test", "YoYo", 2),
            ("v_YoYo_g02_c01", "test", "YoYo", 2),
        ]
        # The case-aware lookup finds the file as spelled on disk.
        assert df["path"][1] == str(root / "HandstandPushups" / "v_HandStandPushups_g08_c01.avi")
        assert Path(df["path"][1]).exists() and not Path(df["path"][4]).exists()


@pytest.mark.parametrize(
    "name, text, line, words",
    [
        ("trainlist01.txt", "YoYo/v_YoYo_g01_c01.avi 3\nYoYo/v_YoYo_g02_c01.avi 4\n", 2, "out of range 1..3"),
        ("trainlist01.txt", "YoYo/v_YoYo_g01_c01.avi\n", 1, "found 1 fields"),
        ("trainlist01.txt", "YoYo/v_YoYo_g01_c01.avi three\n", 1, "must be an integer"),
        ("trainlist01.txt", "YoYo/v_YoYo_g01_c01.avi 1\n", 1, "disagrees with the folder"),
        ("testlist01.txt", "YoYo/v_YoYo_g01_c01.avi\nBoxing/v_Boxing_g01_c01.avi\n", 2, "not in classInd.txt"),
        ("classInd.txt", "1 ApplyEyeMakeup\n3 YoYo\n", 2, "out of order"),
    ],
)
def test_ucf101_malformed_lines(ucf, name, text, line, words):
    root, lists = ucf
    write(lists / name, text)
    with pytest.raises(UserError) as excinfo:
        formats.read_ucf101(root, lists)
    assert_line_error(excinfo, name, line)
    assert words in str(excinfo.value)


def test_ucf101_bad_split_and_paths(ucf, tmp_path):
    root, lists = ucf
    with pytest.raises(UserError, match="1, 2, 3"):
        formats.read_ucf101(root, lists, split=4)
    with pytest.raises(UserError, match=r"trainlist02\.txt does not exist"):
        formats.read_ucf101(root, lists, split=2)
    with pytest.raises(UserError, match=r"UCF-102 does not exist"):
        formats.read_ucf101(tmp_path / "UCF-102", lists)


# ---------------------------------------------------------------------------------------------------------- HMDB51


@pytest.fixture
def hmdb(tmp_path, make_video):
    root = tmp_path / "hmdb51"
    splits = tmp_path / "testTrainMulti_7030_splits"
    names = {
        "cartwheel": ["Bodenturnen_2004_cartwheel_f_cm_np1_le_med_0.avi",
                      "(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi"],
        "brush_hair": ["April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "April_09_brush_hair_u_nm_np1_ba_goo_1.avi",
                       "April_09_brush_hair_u_nm_np1_ba_goo_2.avi"],
    }
    for cls, videos in names.items():
        for v in videos:
            make_video(root / cls / v, **CLIP)
    # Lines end with a space, as in the official files; flag 0 = unused.
    write(splits / "brush_hair_test_split1.txt", "".join(f"{v} {f} \n" for v, f in zip(names["brush_hair"], (1, 2, 0))))
    write(splits / "cartwheel_test_split1.txt", "".join(f"{v} {f} \n" for v, f in zip(names["cartwheel"], (2, 1))))
    write(splits / "brush_hair_test_split2.txt", "".join(f"{v} 1 \n" for v in names["brush_hair"]))
    write(splits / "cartwheel_test_split2.txt", "".join(f"{v} 1 \n" for v in names["cartwheel"]))
    return root, splits


def test_hmdb51_split1_trailing_spaces_and_unused_flag(hmdb, tmp_path):
    root, splits = hmdb
    for splits_dir in (splits, tmp_path):
        df = formats.read_hmdb51(root, splits_dir, split=1)
        check_columns(df)
        assert [(r.video_id, r.split, r.label, r.label_index) for r in df.itertuples()] == [
            ("April_09_brush_hair_u_nm_np1_ba_goo_0", "train", "brush_hair", 0),
            ("April_09_brush_hair_u_nm_np1_ba_goo_1", "test", "brush_hair", 0),
            ("Bodenturnen_2004_cartwheel_f_cm_np1_le_med_0", "test", "cartwheel", 1),
            ("(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0", "train", "cartwheel", 1),
        ]
        assert all(Path(p).exists() for p in df["path"])
        assert df["path"][0] == str(root / "brush_hair" / "April_09_brush_hair_u_nm_np1_ba_goo_0.avi")
    assert len(formats.read_hmdb51(root, splits, split=2)) == 5


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("a.avi 1 \nb.avi 3 \n", 2, "flag 3"),
        ("a.avi 1 \n\nb.avi\n", 3, "expected '<video>.avi <flag>'"),
        ("a.avi x\n", 1, "must be an integer"),
    ],
)
def test_hmdb51_malformed_lines(hmdb, text, line, words):
    root, splits = hmdb
    write(splits / "cartwheel_test_split1.txt", text)
    with pytest.raises(UserError) as excinfo:
        formats.read_hmdb51(root, splits)
    assert_line_error(excinfo, "cartwheel_test_split1.txt", line)
    assert words in str(excinfo.value)


def test_hmdb51_no_split_files(hmdb, tmp_path):
    root, _ = hmdb
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"holds no \*_test_split1\.txt files"):
        formats.read_hmdb51(root, tmp_path / "empty")


# ------------------------------------------------------------------------------------------------ ActivityNet, HACS


def anet_json(database, taxonomy=None):
    data = {"version": "VERSION 1.3", "database": database}
    if taxonomy is not None:
        data["taxonomy"] = taxonomy
    return json.dumps(data)


TAXONOMY = [
    {"nodeName": "Root", "nodeId": 0, "parentName": None, "parentId": None},
    {"nodeName": "Sports", "nodeId": 1, "parentName": "Root", "parentId": 0},
    {"nodeName": "Long jump", "nodeId": 2, "parentName": "Sports", "parentId": 1},
    {"nodeName": "Archery", "nodeId": 3, "parentName": "Sports", "parentId": 1},
]


def test_activitynet_v13(tmp_path, make_video):
    videos = tmp_path / "videos"
    make_video(videos / "v_AAAAAAAAAAA.mp4", **CLIP)
    make_video(videos / "BBBBBBBBBBB.mkv", **CLIP)
    database = {
        "AAAAAAAAAAA": {"duration": 82.73, "subset": "training", "resolution": "1920x1080",
                        "url": "https://www.youtube.com/watch?v=AAAAAAAAAAA",
                        "annotations": [{"segment": [3.1, 10.5], "label": "Long jump"},
                                        {"segment": [20, 30.25], "label": "Archery"}]},
        "BBBBBBBBBBB": {"duration": 40.0, "subset": "validation",
                        "annotations": [{"segment": [1.0, 2.0], "label": "Archery"}]},
        "CCCCCCCCCCC": {"duration": 12.5, "subset": "testing", "annotations": []},
    }
    path = write(tmp_path / "activity_net.v1-3.min.json", anet_json(database, TAXONOMY))
    df = formats.read_activitynet(path, videos)
    check_columns(df, extra=("annotated_duration",))
    assert [(r.video_id, r.split, r.label, r.label_index, r.annotated_duration) for r in df.itertuples()] == [
        ("AAAAAAAAAAA", "train", "Long jump", 1, 82.73),
        ("BBBBBBBBBBB", "val", "Archery", 0, 40.0),
        ("CCCCCCCCCCC", "test", "", -1, 12.5),
    ]
    assert list(df["path"]) == [str(videos / "v_AAAAAAAAAAA.mp4"), str(videos / "BBBBBBBBBBB.mkv"),
                                str(videos / "v_CCCCCCCCCCC.mp4")]
    assert json.loads(df["segments"][0]) == [{"segment": [3.1, 10.5], "label": "Long jump"},
                                             {"segment": [20.0, 30.25], "label": "Archery"}]
    assert json.loads(df["segments"][2]) == []


def test_hacs_string_durations_and_class_folders(tmp_path, make_video):
    videos = tmp_path / "hacs"
    make_video(videos / "Archery" / "v_AAAAAAAAAAA.mp4", **CLIP)
    database = {"AAAAAAAAAAA": {"duration": "92.166667", "subset": "training", "url": "u",
                                "annotations": [{"segment": [1.5, 4.0], "label": "Archery"}]}}
    df = formats.read_activitynet(write(tmp_path / "HACS_segments_v1.1.1.json", anet_json(database)), videos)
    assert df["annotated_duration"][0] == pytest.approx(92.166667)
    assert df["path"][0] == str(videos / "Archery" / "v_AAAAAAAAAAA.mp4")
    assert (df["label"][0], df["label_index"][0]) == ("Archery", 0)


@pytest.mark.parametrize(
    "database, key, words",
    [
        ({"A": {"duration": 1.0, "annotations": []}}, '["database"]["A"]', "'subset' is missing"),
        ({"A": {"duration": "long", "subset": "training", "annotations": []}}, '["database"]["A"]["duration"]',
         "expected a number"),
        ({"A": {"duration": 1, "subset": "training", "annotations": [{"segment": [0, 1]}]}},
         '["database"]["A"]["annotations"][0]', "'label'"),
        ({"A": {"duration": 1, "subset": "training", "annotations": [{"segment": [0], "label": "Archery"}]}},
         '["database"]["A"]["annotations"][0]["segment"]', "two numbers"),
        ({"A": {"duration": 1, "subset": "holdout", "annotations": []}}, '["database"]["A"]["subset"]',
         "unknown split"),
        ({"A": {"duration": 1, "subset": "training", "annotations": [{"segment": [0, 1], "label": "Kayak"}]}},
         '["database"]["A"]["annotations"][0]["label"]', "not in the file's taxonomy"),
    ],
)
def test_activitynet_malformed_keys(tmp_path, database, key, words):
    path = write(tmp_path / "anet.json", anet_json(database, TAXONOMY))
    with pytest.raises(UserError) as excinfo:
        formats.read_activitynet(path, tmp_path)
    message = str(excinfo.value)
    assert "anet.json" in message and key in message and words in message, message


def test_activitynet_not_json_and_no_database(tmp_path):
    with pytest.raises(UserError, match=r"anet\.json is not valid JSON \(line 2"):
        formats.read_activitynet(write(tmp_path / "anet.json", '{"database":\n {,}}'), tmp_path)
    with pytest.raises(UserError, match="lacks the key 'database'"):
        formats.read_activitynet(write(tmp_path / "anet.json", '{"results": {}}'), tmp_path)
    with pytest.raises(UserError, match=re.escape(f"{tmp_path / 'none.json'} does not exist")):
        formats.read_activitynet(tmp_path / "none.json", tmp_path)


# -------------------------------------------------------------------------------------------------------------- HACS
# HACS Segments v1.1.1 (hangzhaomit/HACS-dataset): ActivityNet's layout, "duration" a string, no taxonomy; the official
# download_videos.py saves ROOT_DIR/<label with spaces -> _>/v_<id>.mp4 and skips the testing subset.

HACS_DATABASE = {
    "--0edUL8zmA": {"annotations": [{"label": "Dodgeball", "segment": [5.40, 11.60]},
                                    {"label": "Dodgeball", "segment": [12.60, 88.16]}],
                    "subset": "training", "duration": "92.166667",
                    "url": "https://www.youtube.com/watch?v=--0edUL8zmA"},
    "AAAAAAAAAAA": {"annotations": [{"label": "Applying sunscreen", "segment": [1.0, 3.5]}],
                    "subset": "training", "duration": "40.500000", "url": "u"},
    "BBBBBBBBBBB": {"annotations": [{"label": "Archery", "segment": [0.5, 2.0]},
                                    {"label": "Applying sunscreen", "segment": [3.0, 4.0]}],
                    "subset": "training", "duration": "12.000000", "url": "u"},
    "CCCCCCCCCCC": {"annotations": [{"label": "Archery", "segment": [0, 1]}], "subset": "training",
                    "duration": "8.25", "url": "u"},
    "DDDDDDDDDDD": {"annotations": [{"label": "Zumba", "segment": [2, 5]}], "subset": "validation",
                    "duration": "30.0", "url": "u"},
    "EEEEEEEEEEE": {"annotations": [], "subset": "testing", "duration": "61.0", "url": "u"},
}


@pytest.fixture
def hacs(tmp_path, make_video):
    videos = tmp_path / "HACS"
    make_video(videos / "Dodgeball" / "v_--0edUL8zmA.mp4", **CLIP)
    make_video(videos / "Applying_sunscreen" / "v_AAAAAAAAAAA.mp4", **CLIP)
    make_video(videos / "Applying_sunscreen" / "v_BBBBBBBBBBB.mp4", **CLIP)  # saved under its second label only
    make_video(videos / "Zumba" / "v_DDDDDDDDDDD.mp4", **CLIP)
    # CCCCCCCCCCC was not downloaded; the testing subset never is.
    path = write(tmp_path / "HACS_v1.1.1" / "HACS_segments_v1.1.1.json", json.dumps({"database": HACS_DATABASE}))
    return path, videos


def test_hacs_training_subset_string_durations_and_class_folders(hacs):
    path, videos = hacs
    df = formats.read_hacs(path, videos)
    check_columns(df, extra=("annotated_duration",))
    classes = ["Applying sunscreen", "Archery", "Dodgeball", "Zumba"]  # sorted over the whole file
    assert [(r.video_id, r.split, r.label, r.label_index) for r in df.itertuples()] == [
        ("--0edUL8zmA", "train", "Dodgeball", classes.index("Dodgeball")),
        ("AAAAAAAAAAA", "train", "Applying sunscreen", 0),
        ("BBBBBBBBBBB", "train", "Archery", 1),
        ("CCCCCCCCCCC", "train", "Archery", 1),
    ]
    assert list(df["annotated_duration"]) == pytest.approx([92.166667, 40.5, 12.0, 8.25])
    assert list(df["path"]) == [
        str(videos / "Dodgeball" / "v_--0edUL8zmA.mp4"),
        str(videos / "Applying_sunscreen" / "v_AAAAAAAAAAA.mp4"),
        str(videos / "Applying_sunscreen" / "v_BBBBBBBBBBB.mp4"),
        str(videos / "Archery" / "v_CCCCCCCCCCC.mp4"),  # not on disk: where the download would have put it
    ]
    assert json.loads(df["segments"][0]) == [{"segment": [5.4, 11.6], "label": "Dodgeball"},
                                             {"segment": [12.6, 88.16], "label": "Dodgeball"}]
    both = formats.read_hacs(path, [videos], subsets=("training", "validation"))
    assert list(both["split"]) == ["train"] * 4 + ["val"]
    assert both["path"].iloc[-1] == str(videos / "Zumba" / "v_DDDDDDDDDDD.mp4")
    assert list(formats.read_hacs(path, videos, subsets=["testing"])["label_index"]) == [-1]
    with pytest.raises(UserError, match="HACS subset .train.; valid choices are: testing, training, validation"):
        formats.read_hacs(path, videos, subsets=("train",))


def test_hacs_file_elsewhere_and_label_folder_preferred(tmp_path, make_video):
    videos = tmp_path / "HACS"
    make_video(videos / "misc" / "v_AAAAAAAAAAA.mp4", **CLIP)  # not in a class folder: found by its name
    make_video(videos / "Archery" / "v_BBBBBBBBBBB.mkv", **CLIP)
    make_video(videos / "Other" / "v_BBBBBBBBBBB.mp4", **CLIP)  # .mp4 elsewhere, but the label folder wins
    database = {"AAAAAAAAAAA": {"annotations": [{"label": "Archery", "segment": [0, 1]}], "subset": "training",
                                "duration": "5", "url": "u"},
                "BBBBBBBBBBB": {"annotations": [{"label": "Archery", "segment": [0, 1]}], "subset": "training",
                                "duration": "5", "url": "u"}}
    df = formats.read_hacs(write(tmp_path / "h.json", json.dumps({"database": database})), videos)
    assert list(df["path"]) == [str(videos / "misc" / "v_AAAAAAAAAAA.mp4"),
                                str(videos / "Archery" / "v_BBBBBBBBBBB.mkv")]


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"database": {"A": {"annotations": [], "subset": "training", "duration": "92.1x", "url": "u"}}}',
         '["database"]["A"]["duration"]: expected a number'),
        ('{"database": {"A": {"annotations": [{"label": "Archery"}], "subset": "training", "duration": "1"}}}',
         '["database"]["A"]["annotations"][0]: expected an object'),
        ('{"database": {"A": {"annotations": [], "duration": "1"}}}', "'subset' is missing"),
        ('{"database": {"A": {"annotations": [], "subset": "holdout", "duration": "1"}}}', "unknown split"),
    ],
)
def test_hacs_malformed_entries_name_the_file_and_key(tmp_path, text, words):
    path = write(tmp_path / "HACS_segments_v1.1.1.json", text)
    with pytest.raises(UserError) as excinfo:
        formats.read_hacs(path, tmp_path)
    message = str(excinfo.value)
    assert message.startswith(str(path)) and words in message and message.endswith("."), message
    assert message.count(". ") == 0  # one sentence


def test_hacs_malformed_json_names_the_line(tmp_path):
    path = write(tmp_path / "HACS_segments_v1.1.1.json", '{"database": {\n"A": {"duration": "1",\n}}}')
    with pytest.raises(UserError, match=re.escape(f"{path} is not valid JSON (line 3")):
        formats.read_hacs(path, tmp_path)
    with pytest.raises(UserError, match="HACS segments JSON .* does not exist"):
        formats.read_hacs(tmp_path / "none.json", tmp_path)


def test_hacs_hico_segment_layout(tmp_path, make_video):
    """HiCo's layout of HACS: DATA_ROOT_DIR/training.txt and DATA_ROOT_DIR/training/v_<id>_<startms>_<endms>.mp4."""
    root = tmp_path / "hacs-clips"
    for name in ["v_--0edUL8zmA_0000000_0005000", "v_--0edUL8zmA_0005000_0007250", "v_AAAAAAAAAAA_0000000_0004000"]:
        make_video(root / "training" / f"{name}.mp4", **CLIP)
    lst = write(root / "training.txt", "--0edUL8zmA,0000000,0005000\n--0edUL8zmA,0005000,0007250\n"
                                       "AAAAAAAAAAA,0000000,0004000\n")
    labels = write(tmp_path / "HACS_segments_v1.1.1.json", json.dumps({"database": HACS_DATABASE}))
    df = formats.read_hacs_segments(lst, root, json_path=labels)
    check_columns(df)
    # Class indices as read_hacs gives them: the sorted labels of the whole file.
    assert [(r.video_id, r.split, r.label, r.label_index) for r in df.itertuples()] == [
        ("--0edUL8zmA", "train", "Dodgeball", 2), ("AAAAAAAAAAA", "train", "Applying sunscreen", 0)]
    assert json.loads(df["parts"][0]) == [
        [0.0, 5.0, str(root / "training" / "v_--0edUL8zmA_0000000_0005000.mp4")],
        [5.0, 7.25, str(root / "training" / "v_--0edUL8zmA_0005000_0007250.mp4")],
    ]
    assert df["path"][1] == str(root / "training" / "v_AAAAAAAAAAA_0000000_0004000.mp4")
    unlabelled = formats.read_hacs_segments(lst, root)
    assert list(unlabelled["label_index"]) == [-1, -1]
    bad = write(root / "training.txt", "--0edUL8zmA,0000000,0005000\n--0edUL8zmA,0005000\n")
    with pytest.raises(UserError) as excinfo:
        formats.read_hacs_segments(bad, root)
    assert_line_error(excinfo, "training.txt", 2)
