"""Tiny MovieLens folders in each of the four formats, written by the tests themselves."""

import os

GENRE_FLAGS = {  # ML-100K u.item flag positions (see movielens_formats.ML_100K_GENRES)
    'Action': 1, 'Comedy': 5, 'Drama': 8, 'Sci-Fi': 15,
}


def _flags(*genres):
  flags = ['0'] * 19
  for genre in genres:
    flags[GENRE_FLAGS[genre]] = '1'
  return '|'.join(flags)


ML_100K_ITEMS = [
    f'1|Toy Story (1995)|01-Jan-1995||http://x|{_flags("Comedy")}',
    f'2|GoldenEye (1995)|01-Jan-1995||http://x|{_flags("Action", "Sci-Fi")}',
    f'3|Caf\xe9 au Lait (1994)|01-Jan-1994||http://x|{_flags("Drama")}',
    f'4|unknown||||{"|".join(["1"] + ["0"] * 18)}',
]
ML_100K_USERS = ['1|24|M|technician|85711', '2|53|F|other|01002', '3|23|M|writer|T8H1N']
ML_100K_RATINGS = ['1\t1\t5\t881250949', '1\t2\t3\t881250950', '2\t1\t4\t881250951',
                   '2\t3\t2\t881250952', '3\t2\t1\t881250953', '3\t4\t4\t881250954',
                   '1\t3\t4\t881250955', '2\t2\t5\t881250956', '3\t1\t3\t881250957',
                   '3\t3\t5\t881250958']


def write(path, lines, encoding='latin-1'):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(''.join(line + '\n' for line in lines).encode(encoding))
  return path


def ml100k(folder, ratings=None, items=None, users=None):
  write(os.path.join(folder, 'u.data'), ML_100K_RATINGS if ratings is None else ratings)
  write(os.path.join(folder, 'u.item'), ML_100K_ITEMS if items is None else items)
  write(os.path.join(folder, 'u.user'), ML_100K_USERS if users is None else users)
  return str(folder)


def ml1m(folder):
  write(os.path.join(folder, 'ratings.dat'),
        ['1::10::5::978300760', '1::20::3::978302109', '2::10::4::978301968',
         '2::30::1::978300275'])
  write(os.path.join(folder, 'movies.dat'),
        ['10::Toy Story (1995)::Animation|Children\'s|Comedy',
         '20::Jumanji (1995)::Adventure|Children\'s|Fantasy',
         '30::Heat: The Remake (1995)::Action|Crime|Thriller'])
  write(os.path.join(folder, 'users.dat'), ['1::F::1::10::48067', '2::M::56::16::70072'])
  return str(folder)


ML_10M_MOVIES = [  # UTF-8 titles, and genres ML-1M's list does not have
    '10::Misérables, Les (1995)::Drama|War',
    '20::Pull My Daisy (1958)::(no genres listed)',
    '30::Dark Knight, The (2008)::Action|Crime|Drama|IMAX']


def ml10m(folder):
  write(os.path.join(folder, 'ratings.dat'),
        ['1::10::5::838985046', '1::20::3.5::838983525', '2::10::0.5::1230782529',
         '2::30::4::1230782534'], encoding='utf-8')
  write(os.path.join(folder, 'movies.dat'), ML_10M_MOVIES, encoding='utf-8')
  write(os.path.join(folder, 'tags.dat'), ['1::10::classic::1188263867'], encoding='utf-8')
  return str(folder)


def ml_latest(folder):
  write(os.path.join(folder, 'ratings.csv'),
        ['userId,movieId,rating,timestamp', '1,1,4.0,964982703', '1,3,4.5,964981247',
         '2,1,0.5,964982224', '2,2,3.0,964983815'], encoding='utf-8')
  write(os.path.join(folder, 'movies.csv'),
        ['movieId,title,genres', '1,Toy Story (1995),Adventure|Animation|Children',
         '2,"American President, The (1995)",Comedy|Drama|Romance',
         '3,Amélie (Fabuleux destin d\'Amélie Poulain) (2001),(no genres listed)'],
        encoding='utf-8')
  return str(folder)
